-- The typed memory graph: memories with an embedding BLOB, weighted associations between
-- them, a full-text index kept in sync by triggers, and the revision counter maintenance
-- compares against to skip passes when nothing changed.

CREATE TABLE memories (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,  -- stable rowid of the full-text index
    id                TEXT NOT NULL UNIQUE,               -- uuid v7
    content           TEXT NOT NULL,
    memory_type       TEXT NOT NULL CHECK (memory_type IN
                        ('fact', 'preference', 'decision', 'identity', 'event', 'observation', 'goal', 'todo')),
    importance        REAL NOT NULL CHECK (importance >= 0.0 AND importance <= 1.0),
    created_at        INTEGER NOT NULL,                   -- unix milliseconds
    updated_at        INTEGER NOT NULL,
    last_accessed_at  INTEGER NOT NULL,
    access_count      INTEGER NOT NULL DEFAULT 0,
    source            TEXT NOT NULL,                      -- who saved it: branch:{uuid}, api, cli, ...
    channel_id        TEXT,                               -- the conversation it came from, if any
    forgotten         INTEGER NOT NULL DEFAULT 0 CHECK (forgotten IN (0, 1)),
    embedding         BLOB,                               -- little-endian f32, L2-normalised
    embedding_model   TEXT                                -- the embedder that produced `embedding`
);

-- Partial indexes over remembered memories, for the prompt render and listings.
CREATE INDEX memories_by_type ON memories (memory_type, importance DESC) WHERE forgotten = 0;
CREATE INDEX memories_by_update ON memories (updated_at DESC) WHERE forgotten = 0;

CREATE TABLE associations (
    source_id   TEXT NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    target_id   TEXT NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    relation    TEXT NOT NULL CHECK (relation IN
                  ('related_to', 'updates', 'contradicts', 'caused_by', 'part_of')),
    weight      REAL NOT NULL CHECK (weight >= 0.0 AND weight <= 1.0),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id, relation)
);
CREATE INDEX associations_target ON associations (target_id);

-- Only remembered (not forgotten) memories are in the full-text index.
CREATE VIRTUAL TABLE memories_fts USING fts5(
    content,
    content = 'memories',
    content_rowid = 'seq',
    tokenize = 'porter unicode61'
);

CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories WHEN new.forgotten = 0 BEGIN
    INSERT INTO memories_fts (rowid, content) VALUES (new.seq, new.content);
END;

CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories WHEN old.forgotten = 0 BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, content) VALUES ('delete', old.seq, old.content);
END;

CREATE TRIGGER memories_fts_update AFTER UPDATE OF content, forgotten ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, content)
        SELECT 'delete', old.seq, old.content WHERE old.forgotten = 0;
    INSERT INTO memories_fts (rowid, content)
        SELECT new.seq, new.content WHERE new.forgotten = 0;
END;

-- One row. `revision` counts changes to memories made by saves, updates and deletes;
-- maintenance records the revision it last ran at and skips when nothing changed since.
CREATE TABLE memory_revision (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    revision             INTEGER NOT NULL,
    maintained_revision  INTEGER NOT NULL,
    maintained_at        INTEGER
);
INSERT INTO memory_revision (id, revision, maintained_revision, maintained_at) VALUES (1, 0, 0, NULL);
