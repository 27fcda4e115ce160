-- An approved person may be made an owner (`spacebot access approve CODE --owner`): the way to
-- become the owner on a platform without looking up one's numeric user id.
ALTER TABLE access_members ADD COLUMN authority TEXT NOT NULL DEFAULT 'member'
    CHECK (authority IN ('member', 'owner'));
