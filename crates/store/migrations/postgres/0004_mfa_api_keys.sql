-- Two-factor authentication: the TOTP secret (AES-256-GCM, like other
-- sensitive fields), the secret offered during setup, and the last accepted
-- time step (a code is accepted at most once). Backup codes are stored as
-- keyed hashes, single use.
ALTER TABLE users ADD COLUMN totp_secret_enc TEXT;
ALTER TABLE users ADD COLUMN totp_pending_enc TEXT;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;

CREATE TABLE backup_codes (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    CONSTRAINT backup_codes_user_code UNIQUE (user_id, code_hash)
);

-- API keys: shown once, stored as a digest; the prefix identifies a key.
CREATE TABLE api_keys (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT,
    CONSTRAINT api_keys_prefix UNIQUE (prefix)
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);
