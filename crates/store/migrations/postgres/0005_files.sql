-- Uploaded files. The content lives on disk under `storage_key`, a random
-- name the server chose; `filename` is the client's name, sanitised, kept as
-- metadata only. Rows go with their owner (the contents are removed by the
-- user-deletion use case). Timestamps are Unix milliseconds.
CREATE TABLE files (
    id UUID PRIMARY KEY NOT NULL,
    owner_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL CHECK (size >= 0),
    storage_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT files_storage_key UNIQUE (storage_key)
);
-- The owner's list, newest first (ids are UUIDv7: they sort by time).
CREATE INDEX files_owner_id ON files (owner_id, id);
