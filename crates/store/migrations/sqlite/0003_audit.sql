-- The audit trail: append-only, hash-chained. `seq` is assigned under a
-- write lock, so the chain is one line; `prev_hash` links each entry to the
-- one before (or to the recorded anchor after pruning). Entries keep user ids
-- without foreign keys: they outlive the users they mention.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY NOT NULL,
    id BLOB NOT NULL UNIQUE,
    at INTEGER NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor_id BLOB,
    target_id BLOB,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_event ON audit_log (event, at);
CREATE INDEX audit_log_actor ON audit_log (actor_id);
CREATE INDEX audit_log_target ON audit_log (target_id);
