-- The admin user list pages by (created_at, id): an index in that order makes a page read only
-- its own rows. The email prefix filter is a range on the UNIQUE email index.
CREATE INDEX users_created_at_id ON users (created_at, id);
