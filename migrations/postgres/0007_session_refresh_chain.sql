-- One row per session, however often it refreshes. The live refresh token's hash, its
-- generation (how many rotations the session has had) and its expiry move onto the session; a
-- token carries its session and generation, so an ancestor presented again is recognised by its
-- generation without a row of its own. refresh_tokens keeps only tokens issued before this
-- change, until they rotate or expire.
ALTER TABLE sessions ADD COLUMN refresh_hash TEXT;
ALTER TABLE sessions ADD COLUMN refresh_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN refresh_rotated_at TIMESTAMPTZ;
ALTER TABLE sessions ADD COLUMN refresh_expires_at TIMESTAMPTZ;

-- A session of the old format lives as long as its live (unrotated) token; one without is idle
-- since it began, and goes at the next pruning.
UPDATE sessions SET refresh_expires_at = COALESCE(
    (SELECT MAX(r.expires_at) FROM refresh_tokens r
     WHERE r.session_id = sessions.id AND r.rotated_at IS NULL),
    created_at
);

-- The pruner deletes idle sessions by this index, in small batches.
CREATE INDEX sessions_refresh_expires_at ON sessions (refresh_expires_at);
