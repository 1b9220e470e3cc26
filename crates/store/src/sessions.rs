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

/// The same spend on SQLite, as one batch sent to the writer's worker at
/// once, its transaction included: one round trip instead of one per
/// statement. SQLite has no writing CTEs: each statement goes on only if the
/// one before it changed exactly one row (`changes()`), so a refused mark
/// writes nothing, and the `SELECT` reads back what the caller needs only if
/// the insert took. The answer comes after `COMMIT` (the whole batch is
/// read); a batch stopped by an error or a dropped request ends its writer
/// turn without `keep`, which closes the connection and so rolls it back.
const SQLITE_SPEND: &str = "BEGIN IMMEDIATE; \
    UPDATE refresh_tokens SET used_at = $1 WHERE token_digest = $2 \
      AND used_at IS NULL AND expires_at > $1 \
      AND session_id IN (SELECT id FROM sessions WHERE revoked_at IS NULL); \
    UPDATE sessions SET last_used_at = $1 WHERE changes() = 1 \
      AND id = (SELECT session_id FROM refresh_tokens WHERE token_digest = $2); \
    INSERT INTO refresh_tokens (id, session_id, token_digest, created_at, expires_at) \
      SELECT $3, session_id, $4, $5, $6 FROM refresh_tokens \
      WHERE changes() = 1 AND token_digest = $2; \
    SELECT t.session_id, s.user_id, s.auth_time FROM refresh_tokens t \
      JOIN sessions s ON s.id = t.session_id WHERE changes() = 1 AND t.id = $3; \
    COMMIT";

type SpentRow = (Uuid, Uuid, Option<i64>);

/// Runs [`SQLITE_SPEND`] on the file's writer.
async fn sqlite_spend(
    pool: &sqlx::SqlitePool,
    digest: &str,
    next: &NextRefreshToken,
    now: i64,
) -> Result<Option<SpentRow>, sqlx::Error> {
    let mut writer = SqliteWriter::take(pool).await?;
    // `fetch_all`: stopping at the row would leave `COMMIT` unsent.
    let rows: Vec<SpentRow> = sqlx::query_as(SQLITE_SPEND)
        .bind(now)
        .bind(digest)
        .bind(next.id)
        .bind(&next.digest)
        .bind(next.created_at)
        .bind(next.expires_at)
        .fetch_all(writer.conn()?)
        .await?;
    writer.keep();
    Ok(rows.first().copied())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PoolSettings;

    async fn database() -> (tempfile::TempDir, Database, sqlx::SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/s.db", dir.path().display());
        let db = Database::connect(&url, PoolSettings::default())
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let Database::Sqlite(pool) = &db else {
            unreachable!()
        };
        let pool = pool.clone();
        (dir, db, pool)
    }

    fn next(digest: &str, now: i64) -> NextRefreshToken {
        NextRefreshToken {
            id: Uuid::now_v7(),
            digest: digest.to_owned(),
            created_at: now,
            expires_at: now + 1_000,
        }
    }

    #[tokio::test]
    async fn a_token_is_spent_once_and_a_refused_spend_writes_nothing() {
        let (_dir, db, pool) = database().await;
        let user_id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO users (id, username, username_key, email_index, email_enc, \
             password_hash, role, created_at, updated_at) \
             VALUES ($1, 'u', 'u', 'i', 'e', 'h', 'user', 0, 0)",
        )
        .bind(user_id)
        .execute(&pool)
        .await
        .unwrap();
        let now = 1_000_000;
        let session = NewSession {
            id: Uuid::now_v7(),
            user_id,
            created_at: now,
            expires_at: now + 10_000,
            auth_time: now - 5,
            ip: None,
            user_agent: None,
        };
        let first = NewRefreshToken {
            id: Uuid::now_v7(),
            session_id: session.id,
            digest: "d0".into(),
            created_at: now,
            expires_at: now + 1_000,
        };
        db.start(&session, &first).await.unwrap();
        let tokens = || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM refresh_tokens")
                .fetch_one(&pool)
                .await
                .unwrap()
        };

        let spent = db.spend("d0", &next("d1", now + 1), now + 1).await.unwrap();
        let spent = spent.expect("a live token is spent");
        assert_eq!(
            (spent.session_id, spent.user_id, spent.auth_time),
            (session.id, user_id, Some(now - 5))
        );
        assert_eq!(tokens().await, 2);
        let last_used: i64 = sqlx::query_scalar("SELECT last_used_at FROM sessions")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(last_used, now + 1, "the login was touched");

        // Spent already, unknown, expired, or of a revoked login: refused,
        // and nothing is written (no third token, no touch).
        let refused = [("d0", now + 2), ("nope", now + 2), ("d1", now + 1 + 1_000)];
        for (digest, at) in refused {
            assert!(
                db.spend(digest, &next("dx", at), at)
                    .await
                    .unwrap()
                    .is_none(),
                "{digest} at {at}"
            );
        }
        assert!(db.revoke(session.id, now + 3).await.unwrap());
        assert!(
            db.spend("d1", &next("dx", now + 4), now + 4)
                .await
                .unwrap()
                .is_none(),
            "a revoked login's token is refused"
        );
        assert_eq!(tokens().await, 2);
        let last_used: i64 = sqlx::query_scalar("SELECT last_used_at FROM sessions")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(last_used, now + 1);

        // No refusal left a transaction open on the writer: a new login
        // and its spend still go through, and are visible to other readers.
        let second = NewSession {
            id: Uuid::now_v7(),
            ..session
        };
        let token = NewRefreshToken {
            id: Uuid::now_v7(),
            session_id: second.id,
            digest: "e0".into(),
            created_at: now,
            expires_at: now + 1_000,
        };
        db.start(&second, &token).await.unwrap();
        assert!(
            db.spend("e0", &next("e1", now + 5), now + 5)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(tokens().await, 4);
        db.close().await;
    }
}
