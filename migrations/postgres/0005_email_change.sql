-- Email changes wait for a link mailed to the new address: a third purpose of mailed token, whose
-- `email` is the account's address when the change was asked for (so the token dies if the
-- address changes otherwise) and `new_email` the address it was mailed to.
ALTER TABLE email_tokens ADD COLUMN new_email TEXT;
ALTER TABLE email_tokens DROP CONSTRAINT email_tokens_purpose_check;
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_purpose_check
    CHECK (purpose IN ('password_reset', 'email_verification', 'email_change'));
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_new_email_check
    CHECK ((purpose = 'email_change') = (new_email IS NOT NULL));
