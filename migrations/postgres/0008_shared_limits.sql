-- Rate limits and the password lockout, shared by every instance on this database (SQLite keeps
-- them in its one process). UNLOGGED: no WAL for state that is rewritten on every attempt; a
-- crash of the server empties them, as a restart of the process empties the in-memory ones.
-- Times come from PostgreSQL's clock, so instances with skewed clocks still agree.
CREATE UNLOGGED TABLE rate_limits (
    name    TEXT NOT NULL,
    key     BYTEA NOT NULL,
    -- GCRA: when the key's allowance is full again.
    full_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (name, key)
);
CREATE INDEX rate_limits_full_at ON rate_limits (full_at);

CREATE UNLOGGED TABLE lockouts (
    -- An account's digest with the client address or device that tried it.
    key          BYTEA PRIMARY KEY,
    failures     INTEGER NOT NULL,
    locked_until TIMESTAMPTZ,
    forget_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX lockouts_forget_at ON lockouts (forget_at);
