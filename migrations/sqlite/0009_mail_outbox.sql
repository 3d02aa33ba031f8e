-- Mail waiting to be delivered. A request that answers 202 has written its row first, so a
-- crash or a redeploy loses nothing; the worker delivers from here, retries with backoff, and
-- gives up into a dead letter an operator can see. No token is stored: the worker makes each
-- link's token when it sends the mail (and stores only its hash, in email_tokens).
CREATE TABLE mail_outbox (
    id              BLOB PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    user_id         BLOB,
    email           TEXT NOT NULL,
    new_email       TEXT,
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    -- A worker holds the job until then; past it, another may take it (its holder died).
    claimed_until   TEXT,
    last_error      TEXT,
    delivered_at    TEXT,
    dead_at         TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX mail_outbox_delivered_at ON mail_outbox (delivered_at);
