-- Email flows: verified addresses, and single-use tokens mailed for password resets and email
-- verification. Only the SHA-256 of a token is kept; `email` is the address it was mailed to, so
-- a token stops counting once the account's email has changed.
ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMPTZ;

CREATE TABLE email_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('password_reset', 'email_verification')),
    email      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX email_tokens_user_id ON email_tokens (user_id);
CREATE INDEX email_tokens_expires_at ON email_tokens (expires_at);
