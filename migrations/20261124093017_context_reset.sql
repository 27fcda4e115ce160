-- `/new` starts a fresh context: history loading skips messages up to this transcript position
-- (messages.seq). The messages themselves are kept.
ALTER TABLE conversations ADD COLUMN context_reset_seq INTEGER NOT NULL DEFAULT 0;
