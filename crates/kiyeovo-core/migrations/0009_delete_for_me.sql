-- "Delete for me" (issue 14): a message deleted here keeps its row — its sequence number still
-- counts (our own numbering, what is unsent) — but loses its body and, for a group message, the
-- envelope kept for relaying. Every query that shows, counts or searches messages skips it.
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE group_messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
