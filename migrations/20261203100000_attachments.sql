-- Files people sent with their messages (photos, documents, voice notes). The file itself is
-- in the agent's workspace at `path`; the row is written in the same transaction as its
-- message, so a restart between receiving and answering loses nothing.
CREATE TABLE attachments (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id       TEXT NOT NULL REFERENCES messages(id),
    conversation_id  TEXT NOT NULL,
    name             TEXT NOT NULL,     -- the sender's file name
    media_type       TEXT NOT NULL,     -- MIME type
    kind             TEXT NOT NULL CHECK (kind IN ('image', 'audio', 'document', 'file')),
    size             INTEGER NOT NULL,  -- bytes, as sent
    path             TEXT,              -- workspace-relative; NULL when the file was not received
    refused          TEXT,              -- why it was not received (over the size limit)
    transcript       TEXT,              -- a voice note's text, once transcribed
    created_at       INTEGER NOT NULL
);
CREATE INDEX attachments_message ON attachments (message_id);
