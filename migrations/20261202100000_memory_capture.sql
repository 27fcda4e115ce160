-- Automatic memory capture: the last message of each conversation that a capture pass read.
-- Conversations that exist when this runs start from their newest message, so upgrading does
-- not send whole old histories to the model.
ALTER TABLE conversations ADD COLUMN captured_through INTEGER NOT NULL DEFAULT 0;
UPDATE conversations
SET captured_through = COALESCE(
    (SELECT MAX(seq) FROM messages WHERE messages.conversation_id = conversations.id), 0);
