-- Whether this profile knows the highest sequence number it ever published to a contact (or in a
-- group epoch). A contact added here may have been one of ours before: an identity restored from
-- its recovery phrase (or an old backup) starts at 0 while the contact's inbox is further on, and
-- would drop everything it sends as already seen. Until the flag is set, the first send reads our
-- own bucket back from the DHT and continues above what it finds (issue 15, "no reuse after
-- restore"). Rows from before this version were numbered here from the start: known.
ALTER TABLE contacts ADD COLUMN out_seq_known INTEGER NOT NULL DEFAULT 1;
ALTER TABLE group_own ADD COLUMN out_seq_known INTEGER NOT NULL DEFAULT 1;
