-- Each group message keeps its envelope as it travelled (signed by its sender, encrypted to the
-- group), so any member can hand it to a member who missed it (PROTOCOL.md §5 "honest gaps").
ALTER TABLE group_messages ADD COLUMN envelope BLOB;
