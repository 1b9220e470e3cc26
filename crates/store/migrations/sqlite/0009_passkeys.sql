-- Passkeys (WebAuthn credentials). The verifier's record (public key,
-- counter, flags) is JSON sealed by a keyed MAC over the owner and the
-- credential id; the credential id is unique across all accounts.
CREATE TABLE passkeys (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL,
    name TEXT NOT NULL,
    credential TEXT NOT NULL,
    mac TEXT NOT NULL,
    sign_count INTEGER NOT NULL DEFAULT 0,
    backup_eligible BOOLEAN NOT NULL,
    backed_up BOOLEAN NOT NULL,
    transports TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    CONSTRAINT passkeys_credential UNIQUE (credential_id)
);
CREATE INDEX passkeys_user_id ON passkeys (user_id);

-- Ceremonies between their two requests: single use (taken by a delete),
-- short-lived, found by the SHA-256 of the handle the client holds.
CREATE TABLE webauthn_ceremonies (
    digest TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL,
    user_id BLOB,
    bound_to TEXT,
    state TEXT NOT NULL,
    mac TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);
