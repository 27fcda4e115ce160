-- The daemon's own database ($SPACEBOT_HOME/daemon.db): people the owner approved as
-- members, and the pairing codes unknown people were given in a direct message.

CREATE TABLE access_members (
    user_id       TEXT PRIMARY KEY,    -- platform:id, e.g. telegram:123456789
    display_name  TEXT NOT NULL,
    approved_at   INTEGER NOT NULL     -- unix milliseconds
);

CREATE TABLE access_pairings (
    code             TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL UNIQUE,
    display_name     TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,     -- the direct conversation the code was given in
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
);
