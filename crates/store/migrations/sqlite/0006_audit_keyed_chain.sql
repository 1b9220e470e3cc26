-- The audit chain becomes keyed: new entries are sealed with HMAC-SHA256
-- under AUDIT_CHAIN_KEY. Each entry records how its hash was made
-- (1 = plain SHA-256, every entry written before this migration;
-- 2 = HMAC-SHA256). Entries up to `audit_unkeyed_until` may be unkeyed; a
-- later unkeyed entry is a downgrade, and fails verification. The boundary
-- covers a pruning anchor recorded before the key, too.
ALTER TABLE audit_log ADD COLUMN hash_scheme INTEGER NOT NULL DEFAULT 1;
INSERT INTO gatehouse_meta (key, value)
SELECT 'audit_unkeyed_until', CAST(MAX(
    COALESCE((SELECT MAX(seq) FROM audit_log), 0),
    COALESCE((SELECT CAST(substr(value, 1, instr(value, ':') - 1) AS INTEGER)
              FROM gatehouse_meta WHERE key = 'audit_anchor'), 0)
) AS TEXT);
