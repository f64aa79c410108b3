-- Group messages (PROTOCOL.md §5).
CREATE TABLE group_messages (
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
    PRIMARY KEY (group_id, msg_id),
    UNIQUE (group_id, epoch, sender, seq)
) STRICT;
CREATE INDEX group_messages_order ON group_messages (group_id, sent_at, sender, seq);

-- What we processed from each sender, per group and epoch (the read cursor and dedupe memory).
CREATE TABLE group_inboxes (
    group_id TEXT NOT NULL,
    epoch    INTEGER NOT NULL,
    sender   TEXT NOT NULL,
    inbox    BLOB NOT NULL,                    -- postcard Inbox
    PRIMARY KEY (group_id, epoch, sender)
) STRICT;

-- Messages evicted from a sender's bucket before we read them, and where they were.
CREATE TABLE group_missed (
    group_id   TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    sender     TEXT NOT NULL,
    before_seq INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (group_id, epoch, sender, before_seq)
) STRICT;

-- Our own envelopes per group and epoch: the source of our sender bucket.
CREATE TABLE group_outbox (
    group_id TEXT NOT NULL,
    epoch    INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    PRIMARY KEY (group_id, epoch, seq)
) STRICT;

-- Our sequence counter and bucket version per group and epoch.
CREATE TABLE group_own (
    group_id       TEXT NOT NULL,
    epoch          INTEGER NOT NULL,
    out_seq        INTEGER NOT NULL DEFAULT 0,
    bucket_version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (group_id, epoch)
) STRICT;
