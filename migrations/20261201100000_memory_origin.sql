-- Where a memory came from, for the trust model: `channel_id` already holds the conversation
-- it was said in; `sender` is who said it there, and `trusted` whether an owner did (API and
-- CLI saves are trusted). Memories saved before this migration count as trusted, as they were
-- treated. The index serves recall and the prompt render for one conversation's audience.

ALTER TABLE memories ADD COLUMN sender TEXT;
ALTER TABLE memories ADD COLUMN trusted INTEGER NOT NULL DEFAULT 1 CHECK (trusted IN (0, 1));

CREATE INDEX memories_by_origin ON memories (channel_id, memory_type, importance DESC)
    WHERE forgotten = 0;
