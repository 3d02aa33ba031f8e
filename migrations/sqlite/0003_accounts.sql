-- Accounts can be disabled; revocations outlive the sessions they revoke (a deleted user's
-- sessions are deleted with it, but their access tokens must stay refused until they expire).
ALTER TABLE users ADD COLUMN disabled_at TEXT;
CREATE INDEX users_role ON users (role);

CREATE TABLE session_revocations (
    session_id BLOB PRIMARY KEY NOT NULL,
    revoked_at TEXT NOT NULL
);
CREATE INDEX session_revocations_revoked_at ON session_revocations (revoked_at);
INSERT INTO session_revocations (session_id, revoked_at)
    SELECT id, revoked_at FROM sessions WHERE revoked_at IS NOT NULL;
