-- The audit trail: append-only, hash-chained. `seq` is assigned under a
-- transaction-scoped advisory lock, so the chain stays one line across
-- instances; `prev_hash` links each entry to the one before (or to the
-- recorded anchor after pruning). Entries keep user ids without foreign
-- keys: they outlive the users they mention.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY NOT NULL,
    id UUID NOT NULL UNIQUE,
    at BIGINT NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor_id UUID,
    target_id UUID,
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
