//! The access tables of the daemon's database: members the owner approved, and pairing codes
//! given to unknown people.

use serde::Serialize;
use sqlx::SqlitePool;

use crate::message::Authority;

/// A person the owner approved, as a member or as an owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovedMember {
    pub user_id: String,
    pub display_name: String,
    /// Unix milliseconds.
    pub approved_at: i64,
    pub authority: Authority,
}

/// A pairing code waiting for the owner's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pairing {
    pub code: String,
    pub user_id: String,
    pub display_name: String,
    /// The direct conversation the code was given in.
    pub conversation_id: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct AccessStore {
    pool: SqlitePool,
}

impl AccessStore {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    pub async fn members(&self) -> Result<Vec<ApprovedMember>, sqlx::Error> {
        sqlx::query_as!(
            ApprovedMember,
            r#"SELECT user_id AS "user_id!", display_name, approved_at,
                      authority AS "authority: Authority"
               FROM access_members ORDER BY approved_at"#
        )
        .fetch_all(&self.pool)
        .await
    }

    /// The unexpired pairing of `user_id`, if one was given.
    pub async fn pairing_of(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Option<Pairing>, sqlx::Error> {
        sqlx::query_as!(
            Pairing,
            r#"SELECT code AS "code!", user_id, display_name, conversation_id, created_at,
                      expires_at
               FROM access_pairings WHERE user_id = ? AND expires_at > ?"#,
            user_id,
            now
        )
        .fetch_optional(&self.pool)
        .await
    }

    /// Stores a new pairing, replacing an expired one of the same person.
    pub async fn insert_pairing(&self, pairing: &Pairing) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "INSERT INTO access_pairings
                 (code, user_id, display_name, conversation_id, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (user_id) DO UPDATE SET
                 code = excluded.code, display_name = excluded.display_name,
                 conversation_id = excluded.conversation_id,
                 created_at = excluded.created_at, expires_at = excluded.expires_at",
            pairing.code,
            pairing.user_id,
            pairing.display_name,
            pairing.conversation_id,
            pairing.created_at,
            pairing.expires_at,
        )
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// Unexpired pairings, oldest first.
    pub async fn pending(&self, now: i64) -> Result<Vec<Pairing>, sqlx::Error> {
        sqlx::query_as!(
            Pairing,
            r#"SELECT code AS "code!", user_id, display_name, conversation_id, created_at,
                      expires_at
               FROM access_pairings WHERE expires_at > ? ORDER BY created_at"#,
            now
        )
        .fetch_all(&self.pool)
        .await
    }

    /// Turns an unexpired pairing into an approved person with `authority` (a member or an
    /// owner), in one transaction; `None` when no such code is waiting.
    pub async fn approve(
        &self,
        code: &str,
        now: i64,
        authority: Authority,
    ) -> Result<Option<Pairing>, sqlx::Error> {
        let mut transaction = crate::database::begin_write(&self.pool).await?;
        let pairing = sqlx::query_as!(
            Pairing,
            r#"DELETE FROM access_pairings WHERE code = ? AND expires_at > ?
               RETURNING code AS "code!", user_id AS "user_id!",
                         display_name AS "display_name!", conversation_id AS "conversation_id!",
                         created_at AS "created_at!", expires_at AS "expires_at!""#,
            code,
            now
        )
        .fetch_all(&mut *transaction)
        .await?
        .pop();
        if let Some(pairing) = &pairing {
            sqlx::query!(
                "INSERT INTO access_members (user_id, display_name, approved_at, authority)
                 VALUES (?, ?, ?, ?)
                 ON CONFLICT (user_id) DO UPDATE
                 SET display_name = excluded.display_name, authority = excluded.authority",
                pairing.user_id,
                pairing.display_name,
                now,
                authority
            )
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(pairing)
    }

    /// Removes an approved member; false when there was none.
    pub async fn revoke(&self, user_id: &str) -> Result<bool, sqlx::Error> {
        let removed = sqlx::query!("DELETE FROM access_members WHERE user_id = ?", user_id)
            .execute(&self.pool)
            .await?;
        Ok(removed.rows_affected() > 0)
    }
}
