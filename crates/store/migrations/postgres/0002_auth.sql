-- Accounts, login sessions (refresh-token families) and refresh tokens.
-- Timestamps are Unix milliseconds (BIGINT), compared alike on every backend.
-- email and full_name are AES-256-GCM ciphertexts; email_index is a keyed
-- HMAC blind index used for lookup and uniqueness.
CREATE TABLE users (
    id UUID PRIMARY KEY NOT NULL,
    username TEXT NOT NULL,
    username_key TEXT NOT NULL,
    email_index TEXT NOT NULL,
    email_enc TEXT NOT NULL,
    full_name_enc TEXT,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'moderator', 'user', 'viewer')),
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    mfa_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    auth_version BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username_key),
    CONSTRAINT users_email_index UNIQUE (email_index)
);

CREATE TABLE sessions (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    ip TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE refresh_tokens (
    id UUID PRIMARY KEY NOT NULL,
    session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_digest TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    CONSTRAINT refresh_tokens_digest UNIQUE (token_digest)
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
