-- What a channel's LLM sees (messages with their tool calls, summaries, drop markers), kept
-- apart from the user-facing transcript so the compactor can rewrite it; and worker runs.

CREATE TABLE context_items (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('message', 'summary', 'marker')),
    body             TEXT NOT NULL,     -- JSON of the LLM message (kind message) or plain text
    tokens           INTEGER NOT NULL,  -- estimate, fixed when the item is written
    created_at       INTEGER NOT NULL
);
CREATE INDEX context_items_conversation ON context_items (conversation_id, seq);

CREATE TABLE worker_runs (
    id               TEXT PRIMARY KEY,  -- uuid of the worker process
    conversation_id  TEXT NOT NULL,     -- the channel that owns it
    task             TEXT NOT NULL,
    interactive      INTEGER NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled', 'timed_out')),
    result           TEXT,
    transcript       TEXT,              -- JSON array of the worker's LLM messages
    started_at       INTEGER NOT NULL,
    ended_at         INTEGER
);
CREATE INDEX worker_runs_conversation ON worker_runs (conversation_id, started_at);
