-- Scheduled jobs with their persisted next run, and the history of every execution.

CREATE TABLE cron_jobs (
    id                    TEXT PRIMARY KEY,          -- [a-z0-9_-]{1,64}, unique per agent
    prompt                TEXT NOT NULL,
    cron                  TEXT,                      -- a cron expression, or NULL with every_secs
    every_secs            INTEGER,                   -- an interval, or NULL with cron
    timezone              TEXT,                      -- the job's own zone; NULL: the agent's
    delivery_target       TEXT,                      -- conversation id the outcome goes to
    active_hours          TEXT,                      -- HH:MM-HH:MM in the job's zone, may wrap
    timeout_secs          INTEGER NOT NULL,
    run_once              INTEGER NOT NULL,
    enabled               INTEGER NOT NULL,
    source                TEXT NOT NULL CHECK (source IN ('config', 'tool', 'api')),
    -- The definition as given (JSON); a config job whose definition is unchanged keeps its
    -- state (disabled, failures, next run) across restarts.
    definition            TEXT NOT NULL,
    -- Failures in a row; the job is disabled when it reaches the limit.
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    disabled_reason       TEXT,
    -- The next slot (unix milliseconds). Claiming a run moves it on before the run starts.
    next_run_at           INTEGER,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    CHECK ((cron IS NULL) <> (every_secs IS NULL))
);

CREATE TABLE cron_executions (
    id               TEXT PRIMARY KEY,          -- uuid v7
    job_id           TEXT NOT NULL,             -- kept after the job is deleted
    trigger          TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    scheduled_for    INTEGER NOT NULL,          -- the slot (manual: when it was asked for)
    conversation_id  TEXT NOT NULL,             -- the fresh cron:{job}:{id} conversation
    state            TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed',
                         'timed_out', 'cancelled', 'interrupted', 'missed')),
    outcome          TEXT,                      -- the answer the run produced, if any
    error            TEXT,
    delivered        INTEGER NOT NULL DEFAULT 0,
    started_at       INTEGER NOT NULL,
    ended_at         INTEGER
);
-- A scheduled slot is claimed at most once: a restart can never fire it twice.
CREATE UNIQUE INDEX cron_executions_slot ON cron_executions (job_id, scheduled_for)
    WHERE trigger = 'schedule';
CREATE INDEX cron_executions_job ON cron_executions (job_id, started_at);
CREATE INDEX cron_executions_running ON cron_executions (state) WHERE state = 'running';
