-- Instance-wide facts that outlive a process (schema owner, audit anchors).
CREATE TABLE gatehouse_meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
