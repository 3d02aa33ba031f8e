-- Accounts can be disabled; revocations outlive the sessions they revoke (a deleted user's
-- sessions are deleted with it, but their access tokens must stay refused until they expire).
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMPTZ;
CREATE INDEX users_role ON users (role);

CREATE TABLE session_revocations (
    session_id UUID PRIMARY KEY,
    revoked_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX session_revocations_revoked_at ON session_revocations (revoked_at);
INSERT INTO session_revocations (session_id, revoked_at)
    SELECT id, revoked_at FROM sessions WHERE revoked_at IS NOT NULL;
