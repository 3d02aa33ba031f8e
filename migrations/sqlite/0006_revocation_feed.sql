-- The server reads revocations made by other processes (the admin CLI) in the order they were
-- committed, by a sequence number that only grows: a time window can miss a revocation whose
-- timestamp was taken before its writer waited for the lock. AUTOINCREMENT never reuses a number,
-- even after the pruner deletes the newest rows.
CREATE TABLE session_revocations_feed (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id BLOB NOT NULL UNIQUE,
    revoked_at TEXT NOT NULL
);
INSERT INTO session_revocations_feed (session_id, revoked_at)
    SELECT session_id, revoked_at FROM session_revocations ORDER BY revoked_at;
DROP TABLE session_revocations;
ALTER TABLE session_revocations_feed RENAME TO session_revocations;
CREATE INDEX session_revocations_revoked_at ON session_revocations (revoked_at);
