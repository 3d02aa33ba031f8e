-- The admin user list pages by (created_at, id): an index in that order makes a page read only
-- its own rows. The email prefix filter compares in byte order (COLLATE "C"), which the UNIQUE
-- index under the database's collation cannot serve: it gets an index of its own.
CREATE INDEX users_created_at_id ON users (created_at, id);
CREATE INDEX users_email_bytes ON users (email COLLATE "C");
