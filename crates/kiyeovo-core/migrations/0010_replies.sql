-- Replies (issue 14): the message a message answers, by author (peer id), message id and a
-- digest of the answered text (so a reader whose copy differs does not show its own as the one
-- answered). Only the reference is kept; the quote is read from the answered message when shown.
-- NULL: not a reply (every message stored before this version).
ALTER TABLE messages ADD COLUMN reply_author TEXT;
ALTER TABLE messages ADD COLUMN reply_msg_id BLOB;
ALTER TABLE messages ADD COLUMN reply_digest BLOB;
ALTER TABLE group_messages ADD COLUMN reply_author TEXT;
ALTER TABLE group_messages ADD COLUMN reply_msg_id BLOB;
ALTER TABLE group_messages ADD COLUMN reply_digest BLOB;
