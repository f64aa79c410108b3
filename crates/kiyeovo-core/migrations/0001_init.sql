-- Who this database belongs to. Lets start-up notice a keyring that no longer matches the data
-- (instead of silently creating a new identity and orphaning the user's history).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

-- User settings (display name, bootstrap addresses, listen port). Nothing secret lives here.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
