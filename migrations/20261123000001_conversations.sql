-- Conversations, their messages (the persisted transcript) and per-call token usage.

CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,          -- e.g. portal:cli, telegram:42
    platform    TEXT NOT NULL,             -- the id prefix: portal, telegram, discord, slack, webhook, cron
    created_at  INTEGER NOT NULL,          -- unix milliseconds
    updated_at  INTEGER NOT NULL
);

CREATE TABLE messages (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,  -- total order of the transcript
    id                   TEXT NOT NULL UNIQUE,               -- uuid v7
    conversation_id      TEXT NOT NULL REFERENCES conversations(id),
    role                 TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    sender               TEXT NOT NULL,                      -- display name of the author
    content              TEXT NOT NULL,
    platform_message_id  TEXT,                               -- idempotency key of an inbound message
    -- user messages: pending until a turn answers them; assistant messages: sent
    status               TEXT NOT NULL CHECK (status IN ('pending', 'answered', 'skipped', 'failed', 'sent')),
    created_at           INTEGER NOT NULL
);

CREATE UNIQUE INDEX messages_platform_message
    ON messages (conversation_id, platform_message_id)
    WHERE platform_message_id IS NOT NULL;
CREATE INDEX messages_conversation ON messages (conversation_id, seq);
CREATE INDEX messages_pending ON messages (conversation_id) WHERE status = 'pending';

CREATE TABLE token_usage (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    process_type     TEXT NOT NULL,
    process_id       TEXT NOT NULL,
    model            TEXT NOT NULL,
    input_tokens     INTEGER NOT NULL,
    output_tokens    INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX token_usage_created ON token_usage (created_at);
