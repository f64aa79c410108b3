-- Groups (PROTOCOL.md §4).
-- One row per group; the whole state (keys included) is sealed with the storage key.
CREATE TABLE groups (
    group_id   TEXT PRIMARY KEY NOT NULL,      -- hex of the 16-byte id
    state      BLOB NOT NULL,                  -- sealed postcard Group (aad: group id)
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Group control messages received through the pairwise channel. Written in the same transaction
-- that advances the contact's inbox, processed (and deleted) by the group service in the same
-- transaction that saves the group: a crash in between neither loses nor repeats one.
CREATE TABLE group_inbox (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    peer_id TEXT NOT NULL,
    control BLOB NOT NULL                      -- sealed SignedControl bytes (aad: peer id)
) STRICT;

-- Per-contact "no group invitations from them" (the global switch is a setting).
ALTER TABLE contacts ADD COLUMN invites_blocked INTEGER NOT NULL DEFAULT 0;
