//! `AuditRepo` on both backends. Appends are serialised so the hash chain
//! stays one line: on PostgreSQL by a transaction-scoped advisory lock (held
//! across instances until commit), on SQLite by the file's writer
//! ([`SqliteWriter`]) plus a `BEGIN IMMEDIATE` transaction (SQLite has one
//! writer at a time). The
//! primary key on `seq` refuses any fork that slipped through. Entries are
//! sealed with the chain key given by the caller; the store never keeps it.

use async_trait::async_trait;
use gatehouse_core::CoreError;
use gatehouse_core::audit::{
    Anchor, AuditDraft, AuditEntry, AuditQuery, AuditRepo, ChainKey, GENESIS_HASH, HashScheme,
};
use uuid::Uuid;

use crate::database::SqliteWriter;
use crate::{Database, map_err};

/// Advisory-lock key of audit appends and pruning ("GHAUDIT" as a number).
const PG_AUDIT_LOCK: i64 = 0x0047_4841_5544_4954;
const ANCHOR_KEY: &str = "audit_anchor";
/// Written by the migration that introduced the keyed chain.
const UNKEYED_UNTIL_KEY: &str = "audit_unkeyed_until";

const COLUMNS: &str = "seq, id, at, event, outcome, actor_id, target_id, ip, user_agent, \
                       request_id, details, prev_hash, hash, hash_scheme";

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    id: Uuid,
    at: i64,
    event: String,
    outcome: String,
    actor_id: Option<Uuid>,
    target_id: Option<Uuid>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    details: String,
    prev_hash: String,
    hash: String,
    hash_scheme: i16,
}

impl From<Row> for AuditEntry {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            seq: r.seq,
            at: r.at,
            event: r.event,
            outcome: r.outcome,
            actor_id: r.actor_id,
            target_id: r.target_id,
            ip: r.ip,
            user_agent: r.user_agent,
            request_id: r.request_id,
            details: r.details,
            prev_hash: r.prev_hash,
            hash: r.hash,
            scheme: r.hash_scheme,
        }
    }
}

/// `seq:hash`, or `seq:hash:seal` for anchors recorded with the chain key.
fn parse_anchor(value: &str) -> Option<Anchor> {
    let mut parts = value.splitn(3, ':');
    let seq = parts.next()?.parse().ok()?;
    let hash = parts.next()?.to_owned();
    Some(Anchor {
        seq,
        hash,
        seal: parts.next().map(str::to_owned),
    })
}

const LAST: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
const META_VALUE: &str = "SELECT value FROM gatehouse_meta WHERE key = $1";
const INSERT_INTO: &str = "INSERT INTO audit_log (seq, id, at, event, outcome, actor_id, \
                           target_id, ip, user_agent, request_id, details, prev_hash, hash, \
                           hash_scheme) ";
const SET_ANCHOR: &str = "INSERT INTO gatehouse_meta (key, value) VALUES ($1, $2) \
                          ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// The appends themselves, on a connection that already holds the write
/// lock: the chain's end is read once and the drafts are inserted in one
/// statement. Returns each entry's `(seq, prev_hash, hash)`.
macro_rules! append_locked {
    ($db:ty, $conn:expr, $drafts:expr, $key:expr) => {{
        let last: Option<(i64, String)> = sqlx::query_as(LAST).fetch_optional(&mut *$conn).await?;
        let (mut seq, mut prev_hash) = match last {
            Some(last) => last,
            None => {
                let anchor: Option<String> = sqlx::query_scalar(META_VALUE)
                    .bind(ANCHOR_KEY)
                    .fetch_optional(&mut *$conn)
                    .await?;
                anchor
                    .as_deref()
                    .and_then(parse_anchor)
                    .map_or((0, GENESIS_HASH.to_owned()), |a| (a.seq, a.hash))
            }
        };
        let mut links = Vec::with_capacity($drafts.len());
        for draft in $drafts {
            seq += 1;
            let hash = $key.seal(&prev_hash, seq, draft);
            links.push((seq, std::mem::replace(&mut prev_hash, hash.clone()), hash));
        }
        let mut insert = sqlx::QueryBuilder::<$db>::new(INSERT_INTO);
        insert.push_values(
            $drafts.iter().zip(&links),
            |mut row, (d, (seq, prev, hash))| {
                row.push_bind(*seq)
                    .push_bind(d.id)
                    .push_bind(d.at)
                    .push_bind(&d.event)
                    .push_bind(&d.outcome)
                    .push_bind(d.actor_id)
                    .push_bind(d.target_id)
                    .push_bind(&d.ip)
                    .push_bind(&d.user_agent)
                    .push_bind(&d.request_id)
                    .push_bind(&d.details)
                    .push_bind(prev)
                    .push_bind(hash)
                    .push_bind(HashScheme::HmacSha256.code());
            },
        );
        insert.build().execute(&mut *$conn).await?;
        Ok::<_, sqlx::Error>(links)
    }};
}

/// Pruning on a connection that holds the write lock.
macro_rules! prune_locked {
    ($conn:expr, $cutoff:expr, $key:expr) => {{
        let last_old: Option<(i64, String)> = sqlx::query_as(
            "SELECT seq, hash FROM audit_log WHERE at < $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind($cutoff)
        .fetch_optional(&mut *$conn)
        .await?;
        match last_old {
            None => Ok::<u64, sqlx::Error>(0),
            Some((seq, hash)) => {
                // Delete by sequence, so what remains is always a suffix of
                // the chain, anchored at the last deleted entry.
                let deleted = sqlx::query("DELETE FROM audit_log WHERE seq <= $1")
                    .bind(seq)
                    .execute(&mut *$conn)
                    .await?
                    .rows_affected();
                // Sealed: only the key's holder can move the chain's start.
                let seal = $key.seal_anchor(seq, &hash);
                sqlx::query(SET_ANCHOR)
                    .bind(ANCHOR_KEY)
                    .bind(format!("{seq}:{hash}:{seal}"))
                    .execute(&mut *$conn)
                    .await?;
                Ok(deleted)
            }
        }
    }};
}

impl Database {
    /// Runs `f` with the audit write lock held, in one transaction.
    async fn with_audit_lock<T, F>(&self, f: F) -> Result<T, sqlx::Error>
    where
        F: for<'c> FnOnce(
            Locked<'c>,
        ) -> futures_util::future::BoxFuture<'c, Result<T, sqlx::Error>>,
    {
        match self {
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(PG_AUDIT_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let out = f(Locked::Postgres(&mut tx)).await?;
                tx.commit().await?;
                Ok(out)
            }
            Database::Sqlite(pool) => {
                let mut writer = SqliteWriter::take(pool).await?;
                let conn = writer.conn()?;
                // IMMEDIATE takes the write lock now, not at the first write,
                // so the read of the last entry cannot go stale. On an error
                // (or a drop) the writer is closed, which rolls back.
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                let out = f(Locked::Sqlite(&mut *conn)).await?;
                sqlx::query("COMMIT").execute(&mut *conn).await?;
                writer.keep();
                Ok(out)
            }
        }
    }
}

/// A connection holding the audit write lock.
enum Locked<'c> {
    Postgres(&'c mut sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(&'c mut sqlx::SqliteConnection),
}

#[async_trait]
impl AuditRepo for Database {
    #[tracing::instrument(name = "audit.append", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn append(&self, draft: &AuditDraft, key: &ChainKey) -> Result<AuditEntry, CoreError> {
        let mut entries = self.append_batch(std::slice::from_ref(draft), key).await?;
        entries
            .pop()
            .ok_or_else(|| CoreError::internal("audit append returned nothing"))
    }

    #[tracing::instrument(name = "audit.append_batch", skip_all, fields(otel.kind = "client", db.system.name = self.system_name(), entries = drafts.len()))]
    async fn append_batch(
        &self,
        drafts: &[AuditDraft],
        key: &ChainKey,
    ) -> Result<Vec<AuditEntry>, CoreError> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        let owned = drafts.to_vec();
        let key = key.clone();
        let links = self
            .with_audit_lock(move |locked| {
                Box::pin(async move {
                    let drafts = &owned;
                    match locked {
                        Locked::Postgres(tx) => {
                            let conn = &mut **tx;
                            append_locked!(sqlx::Postgres, conn, drafts, key)
                        }
                        Locked::Sqlite(c) => {
                            let conn = &mut *c;
                            append_locked!(sqlx::Sqlite, conn, drafts, key)
                        }
                    }
                })
            })
            .await
            .map_err(map_err)?;
        Ok(drafts
            .iter()
            .zip(links)
            .map(|(d, (seq, prev_hash, hash))| d.entry(seq, prev_hash, hash))
            .collect())
    }

    #[tracing::instrument(name = "audit.page", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn page(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, CoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log WHERE ($1 IS NULL OR event = $1) \
             AND ($2 IS NULL OR actor_id = $2 OR target_id = $2) \
             AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR seq < $4) \
             ORDER BY seq DESC LIMIT $5"
        );
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        on_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(&q.event)
            .bind(q.user_id)
            .bind(q.since)
            .bind(q.before_seq)
            .bind(limit)
            .fetch_all(pool)
            .await)
        .map(|rows| rows.into_iter().map(AuditEntry::from).collect())
        .map_err(map_err)
    }

    #[tracing::instrument(name = "audit.chain_after", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn chain_after(&self, after: i64, limit: u64) -> Result<Vec<AuditEntry>, CoreError> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        on_pool!(self, pool => sqlx::query_as::<_, Row>(&sql).bind(after).bind(limit).fetch_all(pool).await)
            .map(|rows| rows.into_iter().map(AuditEntry::from).collect())
            .map_err(map_err)
    }

    #[tracing::instrument(name = "audit.anchor", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn anchor(&self) -> Result<Option<Anchor>, CoreError> {
        on_pool!(self, pool => sqlx::query_scalar::<_, String>(META_VALUE).bind(ANCHOR_KEY).fetch_optional(pool).await)
            .map(|v| v.as_deref().and_then(parse_anchor))
            .map_err(map_err)
    }

    #[tracing::instrument(name = "audit.unkeyed_until", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn unkeyed_until(&self) -> Result<i64, CoreError> {
        // A missing or unreadable record is 0: every entry must then be
        // keyed, so deleting the record can only fail verification.
        on_pool!(self, pool => sqlx::query_scalar::<_, String>(META_VALUE).bind(UNKEYED_UNTIL_KEY).fetch_optional(pool).await)
            .map(|v| v.and_then(|v| v.parse().ok()).unwrap_or(0))
            .map_err(map_err)
    }

    #[tracing::instrument(name = "audit.prune_before", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn prune_before(&self, cutoff: i64, key: &ChainKey) -> Result<u64, CoreError> {
        let key = key.clone();
        self.with_audit_lock(move |locked| {
            Box::pin(async move {
                match locked {
                    Locked::Postgres(tx) => {
                        let conn = &mut **tx;
                        prune_locked!(conn, cutoff, key)
                    }
                    Locked::Sqlite(c) => {
                        let conn = &mut *c;
                        prune_locked!(conn, cutoff, key)
                    }
                }
            })
        })
        .await
        .map_err(map_err)
    }

    #[tracing::instrument(name = "audit.count_since", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn count_since(&self, event: &str, since: i64) -> Result<u64, CoreError> {
        let sql = "SELECT COUNT(*) FROM audit_log WHERE event = $1 AND at >= $2";
        on_pool!(self, pool => sqlx::query_scalar::<_, i64>(sql).bind(event).bind(since).fetch_one(pool).await)
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(map_err)
    }

    #[tracing::instrument(name = "audit.count_per_hour", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn count_per_hour(&self, event: &str, since: i64) -> Result<Vec<(i64, u64)>, CoreError> {
        // Integer division on both backends (`at` and the bound are
        // BIGINT/INTEGER milliseconds); the index on `(event, at)` bounds the
        // scan.
        let sql = "SELECT (at - $2) / 3600000 AS bucket, COUNT(*) AS n FROM audit_log \
                   WHERE event = $1 AND at >= $2 GROUP BY bucket ORDER BY bucket";
        on_pool!(self, pool => sqlx::query_as::<_, (i64, i64)>(sql).bind(event).bind(since).fetch_all(pool).await)
            .map(|rows| {
                rows.into_iter()
                    .map(|(hour, n)| (hour, u64::try_from(n).unwrap_or(0)))
                    .collect()
            })
            .map_err(map_err)
    }
}
