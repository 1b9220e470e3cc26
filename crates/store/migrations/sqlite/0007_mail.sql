-- One-time mail tokens (verification, reset, email change): the link's
-- token as SHA-256, the typed code as a keyed hash, bound to the account's
-- state when issued. user_id is NULL for decoys (never redeemable).
CREATE TABLE mail_tokens (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('verify_email', 'password_reset', 'email_change')),
    token_digest TEXT NOT NULL,
    code_digest TEXT NOT NULL,
    address_index TEXT NOT NULL,
    bound_to TEXT NOT NULL,
    new_email_enc TEXT,
    new_email_index TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    code_expires_at INTEGER NOT NULL,
    used_at INTEGER,
    CONSTRAINT mail_tokens_digest UNIQUE (token_digest)
);
CREATE INDEX mail_tokens_address ON mail_tokens (address_index, code_expires_at);
CREATE INDEX mail_tokens_expiry ON mail_tokens (expires_at);

-- The mail outbox: written in the transaction of the change that causes
-- the mail, claimed by one sender at a time under a lease, deleted once
-- sent. The payload is encrypted; it is scrubbed when an entry is given up.
CREATE TABLE mail_outbox (
    id BLOB PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    payload_enc TEXT,
    created_at INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_by BLOB,
    claimed_until INTEGER,
    last_error TEXT,
    gave_up_at INTEGER
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE gave_up_at IS NULL;
