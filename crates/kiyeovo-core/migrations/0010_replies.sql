-- Replies (issue 14): the message a message answers, by author (peer id) and message id. Only
-- the reference is kept; the quote is read from the answered message when shown. NULL: not a
-- reply (every message stored before this version).
ALTER TABLE messages ADD COLUMN reply_author TEXT;
ALTER TABLE messages ADD COLUMN reply_msg_id BLOB;
ALTER TABLE group_messages ADD COLUMN reply_author TEXT;
ALTER TABLE group_messages ADD COLUMN reply_msg_id BLOB;
