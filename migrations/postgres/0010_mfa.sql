-- A second factor: TOTP, with recovery codes, and the login challenges between the password and
-- the code. Sessions remember how they were authenticated, so a refresh keeps the level.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
-- When the session last proved a factor; NULL: at its creation.
ALTER TABLE sessions ADD COLUMN auth_time TIMESTAMPTZ;

-- The secret is AES-256-GCM encrypted under a key derived from the JWT secret. Without
-- confirmed_at the enrollment is pending and changes nothing. last_step is the last TOTP step
-- accepted: a code is accepted only for a later one (no replay, across instances).
CREATE TABLE mfa_totp (
    user_id      UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    confirmed_at TIMESTAMPTZ,
    last_step    BIGINT NOT NULL DEFAULT -1
);

-- Keyed hashes of the single-use recovery codes.
CREATE TABLE mfa_recovery_codes (
    user_id   UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   TIMESTAMPTZ,
    PRIMARY KEY (user_id, code_hash)
);

-- A password proved, waiting for the second factor: found by the hash of its mfa_token, bound
-- to the client address, dead after its expiry or too many wrong codes.
CREATE TABLE mfa_challenges (
    id         UUID PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ip         TEXT NOT NULL,
    failures   INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX mfa_challenges_expires_at ON mfa_challenges (expires_at);
