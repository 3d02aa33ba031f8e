-- Sessions and refresh tokens are pruned by expiry in the background; revocations are reloaded by
-- time on start.
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_revoked_at ON sessions (revoked_at);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
