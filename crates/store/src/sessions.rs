//! `SessionRepo` on both backends: login sessions and their refresh tokens.

use async_trait::async_trait;
use gatehouse_core::CoreError;
use gatehouse_core::ports::{
    NewRefreshToken, NewSession, NextRefreshToken, RefreshLookup, SessionInfo, SessionRepo,
    SessionState, Spent,
};
use uuid::Uuid;

use sqlx::Connection as _;

use crate::database::SqliteWriter;
use crate::{Database, map_err};

const INSERT_TOKEN: &str = "INSERT INTO refresh_tokens (id, session_id, token_digest, created_at, \
                            expires_at) VALUES ($1, $2, $3, $4, $5)";

/// A refresh's spend on PostgreSQL, in one statement (so one round trip and
/// its own transaction). The mark sets `used_at` only on a live, unspent,
/// unexpired token of a login not revoked; a concurrent spend of the same
/// token waits for the row and then finds it used. The touch and the next
/// token follow from the mark, so a refused spend writes nothing.
const PG_SPEND: &str = "WITH marked AS (\
      UPDATE refresh_tokens SET used_at = $1 WHERE token_digest = $2 \
      AND used_at IS NULL AND expires_at > $1 \
      AND session_id IN (SELECT id FROM sessions WHERE revoked_at IS NULL) \
      RETURNING session_id), \
    touched AS (\
      UPDATE sessions SET last_used_at = $1 FROM marked WHERE sessions.id = marked.session_id \
      RETURNING sessions.id, sessions.user_id, sessions.auth_time), \
    issued AS (\
      INSERT INTO refresh_tokens (id, session_id, token_digest, created_at, expires_at) \
      SELECT $3, id, $4, $5, $6 FROM touched) \
    SELECT id, user_id, auth_time FROM touched";

/// The same spend on SQLite, as one batch sent to the connection's worker
/// at once (one round trip instead of one per statement). SQLite has no
/// writing CTEs: each statement goes on only if the one before it changed
/// exactly one row (`changes()`), so a refused mark writes nothing, and the
/// last one reads back what the caller needs only if the insert took.
const SQLITE_SPEND: &str = "UPDATE refresh_tokens SET used_at = $1 WHERE token_digest = $2 \
      AND used_at IS NULL AND expires_at > $1 \
      AND session_id IN (SELECT id FROM sessions WHERE revoked_at IS NULL); \
    UPDATE sessions SET last_used_at = $1 WHERE changes() = 1 \
      AND id = (SELECT session_id FROM refresh_tokens WHERE token_digest = $2); \
    INSERT INTO refresh_tokens (id, session_id, token_digest, created_at, expires_at) \
      SELECT $3, session_id, $4, $5, $6 FROM refresh_tokens \
      WHERE changes() = 1 AND token_digest = $2; \
    SELECT t.session_id, s.user_id, s.auth_time FROM refresh_tokens t \
      JOIN sessions s ON s.id = t.session_id WHERE changes() = 1 AND t.id = $3";

type SpentRow = (Uuid, Uuid, Option<i64>);

/// Runs [`SQLITE_SPEND`] in a transaction on the file's writer. The whole
/// batch runs (`fetch_all`): stopping at the first row would leave the rest
/// unsent.
async fn sqlite_spend(
    pool: &sqlx::SqlitePool,
    digest: &str,
    next: &NextRefreshToken,
    now: i64,
) -> Result<Option<SpentRow>, sqlx::Error> {
    let mut writer = SqliteWriter::take(pool).await?;
    let mut tx = writer.conn()?.begin().await?;
    let rows: Vec<SpentRow> = sqlx::query_as(SQLITE_SPEND)
        .bind(now)
        .bind(digest)
        .bind(next.id)
        .bind(&next.digest)
        .bind(next.created_at)
        .bind(next.expires_at)
        .fetch_all(&mut *tx)
        .await?;
    let spent = match rows.as_slice() {
        [row] => {
            tx.commit().await?;
            Some(*row)
        }
        _ => {
            tx.rollback().await?;
            None
        }
    };
    writer.keep();
    Ok(spent)
}

#[derive(sqlx::FromRow)]
struct LookupRow {
    token_id: Uuid,
    session_id: Uuid,
    user_id: Uuid,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
    auth_time: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    created_at: i64,
    last_used_at: i64,
    ip: Option<String>,
    user_agent: Option<String>,
}

#[async_trait]
impl SessionRepo for Database {
    #[tracing::instrument(name = "sessions.start", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn start(&self, s: &NewSession, t: &NewRefreshToken) -> Result<(), CoreError> {
        let session_sql = "INSERT INTO sessions (id, user_id, created_at, last_used_at, \
                           expires_at, ip, user_agent, auth_time) \
                           VALUES ($1, $2, $3, $3, $4, $5, $6, $7)";
        on_writer!(self, conn => async {
            let mut tx = conn.begin().await?;
            sqlx::query(session_sql)
                .bind(s.id)
                .bind(s.user_id)
                .bind(s.created_at)
                .bind(s.expires_at)
                .bind(&s.ip)
                .bind(&s.user_agent)
                .bind(s.auth_time)
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT_TOKEN)
                .bind(t.id)
                .bind(t.session_id)
                .bind(&t.digest)
                .bind(t.created_at)
                .bind(t.expires_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }.await)
        .map_err(map_err)
    }

    #[tracing::instrument(name = "sessions.find_refresh", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn find_refresh(&self, digest: &str) -> Result<Option<RefreshLookup>, CoreError> {
        let sql = "SELECT t.id AS token_id, t.session_id, s.user_id, t.expires_at, t.used_at, \
                   s.revoked_at, s.auth_time FROM refresh_tokens t \
                   JOIN sessions s ON s.id = t.session_id WHERE t.token_digest = $1";
        on_pool!(self, pool => sqlx::query_as::<_, LookupRow>(sql).bind(digest).fetch_optional(pool).await)
            .map(|row| {
                row.map(|r| RefreshLookup {
                    token_id: r.token_id,
                    session_id: r.session_id,
                    user_id: r.user_id,
                    expires_at: r.expires_at,
                    used_at: r.used_at,
                    session_revoked_at: r.revoked_at,
                    auth_time: r.auth_time,
                })
            })
            .map_err(map_err)
    }

    #[tracing::instrument(name = "sessions.state", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn state(&self, session_id: Uuid) -> Result<Option<SessionState>, CoreError> {
        let sql = "SELECT user_id, revoked_at, expires_at FROM sessions WHERE id = $1";
        on_pool!(self, pool => sqlx::query_as::<_, (Uuid, Option<i64>, i64)>(sql).bind(session_id).fetch_optional(pool).await)
            .map(|row| {
                row.map(|(user_id, revoked_at, expires_at)| SessionState {
                    user_id,
                    revoked: revoked_at.is_some(),
                    expires_at,
                })
            })
            .map_err(map_err)
    }

    #[tracing::instrument(name = "sessions.spend", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn spend(
        &self,
        digest: &str,
        next: &NextRefreshToken,
        now: i64,
    ) -> Result<Option<Spent>, CoreError> {
        // The mark's conditions are the whole check; the touch and the next
        // token follow only a mark that took. Both backends send the whole
        // spend at once: one statement on PostgreSQL, one batch inside a
        // transaction on SQLite.
        let spent = match self {
            Database::Postgres(pool) => sqlx::query_as(PG_SPEND)
                .bind(now)
                .bind(digest)
                .bind(next.id)
                .bind(&next.digest)
                .bind(next.created_at)
                .bind(next.expires_at)
                .fetch_optional(pool)
                .await
                .map_err(map_err)?,
            Database::Sqlite(pool) => sqlite_spend(pool, digest, next, now)
                .await
                .map_err(map_err)?,
        };
        Ok(spent.map(|(session_id, user_id, auth_time)| Spent {
            session_id,
            user_id,
            auth_time,
        }))
    }

    #[tracing::instrument(name = "sessions.set_auth_time", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn set_auth_time(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        auth_time: i64,
    ) -> Result<bool, CoreError> {
        let sql = "UPDATE sessions SET auth_time = $1 WHERE id = $2 AND user_id = $3 \
                   AND revoked_at IS NULL";
        on_pool!(self, pool => sqlx::query(sql).bind(auth_time).bind(session_id).bind(user_id).execute(pool).await.map(|r| r.rows_affected()))
            .map(|n| n == 1)
            .map_err(map_err)
    }

    #[tracing::instrument(name = "sessions.revoke", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn revoke(&self, session_id: Uuid, now: i64) -> Result<bool, CoreError> {
        let sql = "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
        on_writer!(self, conn => sqlx::query(sql).bind(now).bind(session_id).execute(conn).await.map(|r| r.rows_affected()))
            .map(|n| n == 1)
            .map_err(map_err)
    }

    #[tracing::instrument(name = "sessions.revoke_all", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn revoke_all(&self, user_id: Uuid, now: i64) -> Result<u64, CoreError> {
        let sql = "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL";
        on_pool!(self, pool => sqlx::query(sql).bind(now).bind(user_id).execute(pool).await.map(|r| r.rows_affected()))
            .map_err(map_err)
    }

    #[tracing::instrument(name = "sessions.list_active", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn list_active(&self, user_id: Uuid, now: i64) -> Result<Vec<SessionInfo>, CoreError> {
        let sql = "SELECT id, created_at, last_used_at, ip, user_agent FROM sessions \
                   WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
                   ORDER BY id DESC";
        on_pool!(self, pool => sqlx::query_as::<_, SessionRow>(sql).bind(user_id).bind(now).fetch_all(pool).await)
            .map(|rows| {
                rows.into_iter()
                    .map(|r| SessionInfo {
                        id: r.id,
                        created_at: r.created_at,
                        last_used_at: r.last_used_at,
                        ip: r.ip,
                        user_agent: r.user_agent,
                    })
                    .collect()
            })
            .map_err(map_err)
    }

    #[tracing::instrument(name = "sessions.owner", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn owner(&self, session_id: Uuid) -> Result<Option<Uuid>, CoreError> {
        let sql = "SELECT user_id FROM sessions WHERE id = $1";
        on_pool!(self, pool => sqlx::query_scalar::<_, Uuid>(sql).bind(session_id).fetch_optional(pool).await)
            .map_err(map_err)
    }

    #[tracing::instrument(name = "sessions.count_active", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn count_active(&self, now: i64) -> Result<u64, CoreError> {
        let sql = "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > $1";
        on_pool!(self, pool => sqlx::query_scalar::<_, i64>(sql).bind(now).fetch_one(pool).await)
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(map_err)
    }

    #[tracing::instrument(name = "sessions.count_active_by_role", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn count_active_by_role(&self, now: i64) -> Result<Vec<(String, u64)>, CoreError> {
        let sql = "SELECT u.role, COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id \
                   WHERE s.revoked_at IS NULL AND s.expires_at > $1 GROUP BY u.role ORDER BY u.role";
        on_pool!(self, pool => sqlx::query_as::<_, (String, i64)>(sql).bind(now).fetch_all(pool).await)
            .map(|rows| {
                rows.into_iter()
                    .map(|(role, n)| (role, u64::try_from(n).unwrap_or(0)))
                    .collect()
            })
            .map_err(map_err)
    }
}
