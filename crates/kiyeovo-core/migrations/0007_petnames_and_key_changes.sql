-- Protocol v2 (PROTOCOL.md §2 "Names"): the user's own name for a contact, shown everywhere in
-- place of the name on their card (NULL: the card's name); and when a contact's card came back
-- with another X25519 key (trust was reset; the UI says so until the user acknowledges it).
ALTER TABLE contacts ADD COLUMN petname TEXT;
ALTER TABLE contacts ADD COLUMN key_changed_at INTEGER;
