-- Mail waiting to be delivered. A request that answers 202 has written its row first, so a
-- crash or a redeploy loses nothing; the workers of all instances deliver from here (each job
-- claimed by one, FOR UPDATE SKIP LOCKED), retry with backoff, and give up into a dead letter an
-- operator can see. No token is stored: the worker makes each link's token when it sends the mail
-- (and stores only its hash, in email_tokens).
CREATE TABLE mail_outbox (
    id              UUID PRIMARY KEY,
    kind            TEXT NOT NULL,
    user_id         UUID,
    email           TEXT NOT NULL,
    new_email       TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    -- A worker holds the job until then; past it, another may take it (its holder died).
    claimed_until   TIMESTAMPTZ,
    last_error      TEXT,
    delivered_at    TIMESTAMPTZ,
    dead_at         TIMESTAMPTZ
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX mail_outbox_delivered_at ON mail_outbox (delivered_at);
