-- Contacts and the pairwise channel (PROTOCOL.md §2).
CREATE TABLE contacts (
    peer_id        TEXT PRIMARY KEY NOT NULL,
    card           BLOB NOT NULL,              -- postcard ContactCard: public keys, name, addresses
    added_at       INTEGER NOT NULL,
    trusted_at     INTEGER,                    -- NULL while the handshake is pending
    blocked        INTEGER NOT NULL DEFAULT 0,
    out_seq        INTEGER NOT NULL DEFAULT 0, -- last seq we used towards them
    bucket_version INTEGER NOT NULL DEFAULT 0, -- last version of our bucket for them
    inbox          BLOB NOT NULL               -- postcard Inbox: what we processed from them
) STRICT;

CREATE TABLE messages (
    peer_id  TEXT NOT NULL REFERENCES contacts(peer_id) ON DELETE CASCADE,
    msg_id   BLOB NOT NULL,
    outgoing INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    sent_at  INTEGER NOT NULL,
    body     BLOB NOT NULL,                    -- sealed with the storage key (aad: peer id ‖ msg id)
    state    TEXT NOT NULL,                    -- outgoing: pending|stored|sent|delivered; incoming: received
    read     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (peer_id, msg_id)
) STRICT;
CREATE INDEX messages_by_time ON messages (peer_id, sent_at, seq);

-- Our envelopes towards each contact, already end-to-end encrypted; the source of our bucket.
CREATE TABLE outbox (
    peer_id  TEXT NOT NULL REFERENCES contacts(peer_id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    PRIMARY KEY (peer_id, seq)
) STRICT;
