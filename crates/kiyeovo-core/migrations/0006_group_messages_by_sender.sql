-- Protocol v2 (PROTOCOL.md §5): group messages are keyed by (group, sender, msg_id). Under v1's
-- key (group, msg_id) a member who copied another member's msg_id into its own envelope, and got
-- it to us first, made us drop the real message as a "duplicate". Each row keeps its columns.
CREATE TABLE group_messages_v2 (
    group_id    TEXT NOT NULL,
    epoch       INTEGER NOT NULL,
    sender      TEXT NOT NULL,                 -- peer id
    seq         INTEGER NOT NULL,
    msg_id      BLOB NOT NULL,
    sent_at     INTEGER NOT NULL,              -- sender's clock
    body        BLOB NOT NULL,                 -- sealed with the storage key (aad: group id ‖ msg id)
    outgoing    INTEGER NOT NULL,
    published   INTEGER NOT NULL DEFAULT 0,    -- outgoing: handed to the live mesh
    stored      INTEGER NOT NULL DEFAULT 0,    -- outgoing: in our offline bucket
    read        INTEGER NOT NULL DEFAULT 0,
    envelope    BLOB,                          -- as it travelled, for relaying
    PRIMARY KEY (group_id, sender, msg_id),
    UNIQUE (group_id, epoch, sender, seq)
) STRICT;
INSERT INTO group_messages_v2
    (group_id, epoch, sender, seq, msg_id, sent_at, body, outgoing, published, stored, read, envelope)
    SELECT group_id, epoch, sender, seq, msg_id, sent_at, body, outgoing, published, stored, read, envelope
    FROM group_messages;
DROP TABLE group_messages;
ALTER TABLE group_messages_v2 RENAME TO group_messages;
CREATE INDEX group_messages_order ON group_messages (group_id, sent_at, sender, seq);
