-- Who sent each message and with what authority: the stable platform id of the sender
-- (e.g. telegram:123456789; NULL for the API and scheduled jobs), the authority the router
-- gave the message (owner, member or guest), and whether it was a direct message. A turn
-- acts with the weakest authority of the messages it answers, also after a restart.
-- Messages stored before this migration were taken from anyone, with an owner's authority.

ALTER TABLE messages ADD COLUMN sender_id TEXT;
ALTER TABLE messages ADD COLUMN authority TEXT NOT NULL DEFAULT 'owner'
    CHECK (authority IN ('owner', 'member', 'guest'));
ALTER TABLE messages ADD COLUMN direct INTEGER NOT NULL DEFAULT 1;
