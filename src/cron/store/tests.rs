//! Tests of the cron store on real SQLite files: claiming slots across a restart, failures
//! in a row, config jobs, missed slots and run-once jobs.

use super::*;

async fn store() -> (tempfile::TempDir, CronStore) {
    let directory = tempfile::tempdir().expect("tempdir");
    let pool = crate::database::open(&directory.path().join("spacebot.db"))
        .await
        .expect("database");
    (directory, CronStore::new(pool))
}

fn spec(id: &str) -> JobSpec {
    JobSpec {
        id: id.to_string(),
        prompt: "say hello".to_string(),
        schedule: ScheduleSpec::Every(60),
        timezone: None,
        delivery_target: Some("telegram:42".to_string()),
        active_hours: None,
        timeout_secs: 60,
        enabled: true,
        run_once: false,
    }
}

fn failed<'a>(error: &'a str) -> Finish<'a> {
    Finish {
        state: ExecutionState::Failed,
        outcome: None,
        error: Some(error),
        delivered: false,
    }
}

#[tokio::test]
async fn a_claimed_slot_is_never_claimed_again_even_after_reopening() {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("spacebot.db");
    let pool = crate::database::open(&path).await.expect("database");
    let store = CronStore::new(pool.clone());
    store
        .insert(&spec("tick"), JobSource::Api, 0)
        .await
        .expect("insert");
    store
        .set_next_run("tick", 1000, 0)
        .await
        .expect("first slot");
    let execution = store
        .claim("tick", 1000, Some(61_000), 1000)
        .await
        .expect("claim")
        .expect("the slot is free");
    assert_eq!(
        execution.conversation_id,
        format!("cron:tick:{}", execution.id)
    );
    // The daemon dies here, between the claim and the run, and starts again.
    pool.close().await;
    let store = CronStore::new(crate::database::open(&path).await.expect("reopen"));
    assert!(
        store
            .claim("tick", 1000, Some(61_000), 2000)
            .await
            .expect("claim")
            .is_none()
    );
    let interrupted = store.interrupt_running(3000).await.expect("recover");
    assert_eq!(interrupted.len(), 1);
    let job = store.get("tick").await.expect("get").expect("job");
    assert_eq!(job.next_run_at, Some(61_000));
    let history = store.executions("tick", 10).await.expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].state, ExecutionState::Interrupted);
    assert_eq!(
        job.consecutive_failures, 0,
        "an interruption is not a failure"
    );
}

#[tokio::test]
async fn three_failures_in_a_row_disable_a_job_and_a_success_resets_the_count() {
    let (_directory, store) = store().await;
    store
        .insert(&spec("flaky"), JobSource::Tool, 0)
        .await
        .expect("insert");
    let run = |at: i64| {
        let store = store.clone();
        async move { store.start_manual("flaky", at).await.expect("start") }
    };
    let execution = run(1).await;
    store
        .finish(&execution, &failed("boom 1"), 2)
        .await
        .expect("finish");
    let execution = run(3).await;
    let success = Finish {
        state: ExecutionState::Succeeded,
        outcome: Some("fine"),
        error: None,
        delivered: true,
    };
    store.finish(&execution, &success, 4).await.expect("finish");
    for attempt in 0..2 {
        let execution = run(10 + attempt).await;
        let finished = store
            .finish(&execution, &failed("boom"), 20 + attempt)
            .await
            .expect("finish");
        assert!(!finished.disabled_now);
        assert!(
            finished.job.expect("job").enabled,
            "two failures in a row are tolerated"
        );
    }
    let execution = run(30).await;
    let finished = store
        .finish(&execution, &failed("boom 3"), 31)
        .await
        .expect("finish");
    assert!(finished.disabled_now);
    let job = finished.job.expect("job");
    assert!(!job.enabled);
    assert_eq!(job.consecutive_failures, 3);
    assert_eq!(
        job.disabled_reason.as_deref(),
        Some("failed 3 times in a row; last error: boom 3")
    );
    let enabled = store
        .set_enabled("flaky", true, 40)
        .await
        .expect("enable")
        .expect("job");
    assert!(enabled.enabled && enabled.consecutive_failures == 0);
    assert!(enabled.disabled_reason.is_none());
}

#[tokio::test]
async fn config_jobs_keep_their_state_until_their_definition_changes() {
    let (_directory, store) = store().await;
    let original = spec("digest");
    store.upsert_config(&original, 0).await.expect("upsert");
    store
        .disable("digest", "failed 3 times in a row", 1)
        .await
        .expect("disable");
    store
        .upsert_config(&original, 2)
        .await
        .expect("upsert again");
    let job = store.get("digest").await.expect("get").expect("job");
    assert!(!job.enabled, "a restart does not undo a disable");
    let changed = JobSpec {
        prompt: "say goodbye".into(),
        ..original
    };
    store
        .upsert_config(&changed, 3)
        .await
        .expect("upsert changed");
    let job = store.get("digest").await.expect("get").expect("job");
    assert!(job.enabled && job.prompt == "say goodbye");
    assert_eq!(job.source, JobSource::Config);
    store
        .insert(&spec("manual"), JobSource::Api, 4)
        .await
        .expect("insert");
    let removed = store.remove_config_jobs_except(&[]).await.expect("remove");
    assert_eq!(removed, vec!["digest".to_string()]);
    assert!(store.get("manual").await.expect("get").is_some());
}

#[tokio::test]
async fn a_missed_slot_is_recorded_and_the_job_moves_on() {
    let (_directory, store) = store().await;
    store
        .insert(&spec("late"), JobSource::Api, 0)
        .await
        .expect("insert");
    store.set_next_run("late", 1000, 0).await.expect("slot");
    assert!(
        store
            .record_missed("late", 1000, Some(5000), "missed", 4000)
            .await
            .expect("missed")
    );
    assert!(
        store
            .claim("late", 1000, Some(9000), 4001)
            .await
            .expect("claim")
            .is_none()
    );
    let job = store.get("late").await.expect("get").expect("job");
    assert_eq!(job.next_run_at, Some(5000));
    let history = store.executions("late", 10).await.expect("history");
    assert_eq!(history[0].state, ExecutionState::Missed);
}

#[tokio::test]
async fn a_run_once_job_is_disabled_after_its_scheduled_run() {
    let (_directory, store) = store().await;
    let once = JobSpec {
        run_once: true,
        ..spec("once")
    };
    store
        .insert(&once, JobSource::Tool, 0)
        .await
        .expect("insert");
    store.set_next_run("once", 100, 0).await.expect("slot");
    let execution = store
        .claim("once", 100, None, 100)
        .await
        .expect("claim")
        .expect("free");
    let done = Finish {
        state: ExecutionState::Succeeded,
        outcome: Some("hello"),
        error: None,
        delivered: true,
    };
    let job = store
        .finish(&execution, &done, 200)
        .await
        .expect("finish")
        .job
        .expect("job");
    assert!(!job.enabled);
    assert_eq!(job.disabled_reason.as_deref(), Some("ran once"));
}
