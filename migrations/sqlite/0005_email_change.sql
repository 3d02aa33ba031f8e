-- Email changes wait for a link mailed to the new address: a third purpose of mailed token, whose
-- `email` is the account's address when the change was asked for (so the token dies if the
-- address changes otherwise) and `new_email` the address it was mailed to. SQLite cannot alter a
-- CHECK constraint, so the table is rebuilt.
CREATE TABLE email_tokens_new (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL
               CHECK (purpose IN ('password_reset', 'email_verification', 'email_change')),
    email      TEXT NOT NULL,
    new_email  TEXT CHECK ((purpose = 'email_change') = (new_email IS NOT NULL)),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
INSERT INTO email_tokens_new (token_hash, user_id, purpose, email, created_at, expires_at, used_at)
    SELECT token_hash, user_id, purpose, email, created_at, expires_at, used_at FROM email_tokens;
DROP TABLE email_tokens;
ALTER TABLE email_tokens_new RENAME TO email_tokens;
CREATE INDEX email_tokens_user_id ON email_tokens (user_id);
CREATE INDEX email_tokens_expires_at ON email_tokens (expires_at);
