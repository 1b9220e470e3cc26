//! `UserRepo` on both backends.

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use gatehouse_core::CoreError;
use gatehouse_core::ports::{
    NewUser, PasswordChange, Reencrypted, UserChanges, UserFilter, UserRecord, UserRepo, UserStats,
};
use uuid::Uuid;

use crate::{Database, map_err};

const COLUMNS: &str = "id, username, email_enc, full_name_enc, password_hash, role, is_active, \
                       email_verified, mfa_enabled, auth_version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    username: String,
    email_enc: String,
    full_name_enc: Option<String>,
    password_hash: String,
    role: String,
    is_active: bool,
    email_verified: bool,
    mfa_enabled: bool,
    auth_version: i64,
    created_at: i64,
    updated_at: i64,
}

impl From<Row> for UserRecord {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            username: r.username,
            email_enc: r.email_enc,
            full_name_enc: r.full_name_enc,
            password_hash: r.password_hash,
            role: r.role,
            is_active: r.is_active,
            email_verified: r.email_verified,
            mfa_enabled: r.mfa_enabled,
            auth_version: r.auth_version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// `WHERE` clause and its text parameters for a filter; parameters are
/// numbered from `$1`. Values are always bound, never spliced.
fn filter_sql(filter: &UserFilter) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    if let Some(prefix) = &filter.username_prefix {
        // LIKE with an escape character, so `%` and `_` in the input match
        // themselves.
        let escaped = prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        params.push(format!("{escaped}%"));
        clauses.push(format!("username_key LIKE ${} ESCAPE '\\'", params.len()));
    }
    if let Some(role) = &filter.role {
        params.push(role.clone());
        clauses.push(format!("role = ${}", params.len()));
    }
    if let Some(active) = filter.is_active {
        // Booleans are written as literals: both dialects accept TRUE/FALSE.
        clauses.push(format!(
            "is_active = {}",
            if active { "TRUE" } else { "FALSE" }
        ));
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    (sql, params)
}

/// Users per page of an export: each page is one short query.
const STREAM_PAGE: u64 = 500;

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Database {
    async fn user_where(&self, clause: &str, value: &str) -> Result<Option<UserRecord>, CoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE {clause} = $1");
        on_pool!(self, pool => sqlx::query_as::<_, Row>(&sql).bind(value).fetch_optional(pool).await)
            .map(|r| r.map(UserRecord::from))
            .map_err(map_err)
    }
}

#[async_trait]
impl UserRepo for Database {
    #[tracing::instrument(name = "users.create", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn create(&self, user: &NewUser) -> Result<(), CoreError> {
        let sql = "INSERT INTO users (id, username, username_key, email_index, email_enc, \
                   full_name_enc, password_hash, role, is_active, email_verified, mfa_enabled, \
                   auth_version, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
        crate::mail::create_user_with_mail(self, sql, user)
            .await
            .map_err(map_err)
    }

    #[tracing::instrument(name = "users.by_id", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn by_id(&self, id: Uuid) -> Result<Option<UserRecord>, CoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        on_pool!(self, pool => sqlx::query_as::<_, Row>(&sql).bind(id).fetch_optional(pool).await)
            .map(|r| r.map(UserRecord::from))
            .map_err(map_err)
    }

    #[tracing::instrument(name = "users.by_email_index", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn by_email_index(&self, index: &str) -> Result<Option<UserRecord>, CoreError> {
        self.user_where("email_index", index).await
    }

    #[tracing::instrument(name = "users.by_username_key", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn by_username_key(&self, key: &str) -> Result<Option<UserRecord>, CoreError> {
        self.user_where("username_key", key).await
    }

    #[tracing::instrument(name = "users.set_password_hash", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn set_password_hash(
        &self,
        id: Uuid,
        old: &str,
        new: &str,
        now: i64,
    ) -> Result<bool, CoreError> {
        let sql = "UPDATE users SET password_hash = $1, updated_at = $2 \
                   WHERE id = $3 AND password_hash = $4";
        on_pool!(self, pool => sqlx::query(sql).bind(new).bind(now).bind(id).bind(old).execute(pool).await.map(|r| r.rows_affected() == 1))
            .map_err(map_err)
    }

    #[tracing::instrument(name = "users.change_password", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn change_password(&self, c: &PasswordChange) -> Result<Option<Vec<Uuid>>, CoreError> {
        // No password (an empty hash) only while the account has a passkey.
        let set = "UPDATE users SET password_hash = $1, updated_at = $2, \
                   auth_version = auth_version + 1 WHERE id = $3 AND auth_version = $4 \
                   AND ($1 <> '' OR EXISTS (SELECT 1 FROM passkeys WHERE user_id = $3))";
        // PostgreSQL: the account's row is locked first, so the check above
        // reads passkeys after any concurrent removal of one has committed
        // (a removal locks the same row). SQLite has one writer at a time.
        let lock = match self {
            Database::Postgres(_) if c.hash.is_empty() => {
                Some("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
            }
            _ => None,
        };
        let sessions =
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL";
        let keys = "UPDATE api_keys SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
                    RETURNING id";
        // A reset spends its token here: a token used meanwhile changes nothing.
        let spend = "UPDATE mail_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL";
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            if let Some(lock) = lock {
                sqlx::query(lock).bind(c.user_id).execute(&mut *tx).await?;
            }
            if let Some(token) = c.spends {
                let spent = sqlx::query(spend).bind(c.now).bind(token).execute(&mut *tx).await?;
                if spent.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(None);
                }
            }
            let changed = sqlx::query(set)
                .bind(&c.hash)
                .bind(c.now)
                .bind(c.user_id)
                .bind(c.expected_version)
                .execute(&mut *tx)
                .await?;
            if changed.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(None);
            }
            sqlx::query(sessions).bind(c.now).bind(c.user_id).execute(&mut *tx).await?;
            let revoked: Vec<Uuid> = sqlx::query_scalar(keys)
                .bind(c.now)
                .bind(c.user_id)
                .fetch_all(&mut *tx)
                .await?;
            if let Some(notice) = &c.notice {
                insert_outbox!(&mut *tx, notice).await?;
            }
            tx.commit().await?;
            Ok(Some(revoked))
        }.await)
        .map_err(map_err)
    }

    #[tracing::instrument(name = "users.update", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn update(&self, id: Uuid, changes: &UserChanges, now: i64) -> Result<bool, CoreError> {
        let mut sets = vec!["updated_at = $1".to_owned()];
        let mut texts: Vec<Option<String>> = Vec::new();
        let mut next = 2;
        let mut push = |sets: &mut Vec<String>, column: &str, value: Option<String>| {
            sets.push(format!("{column} = ${next}"));
            texts.push(value);
            next += 1;
        };
        if let Some(name) = &changes.full_name_enc {
            push(&mut sets, "full_name_enc", name.clone());
        }
        if let Some((enc, index)) = &changes.email {
            push(&mut sets, "email_enc", Some(enc.clone()));
            push(&mut sets, "email_index", Some(index.clone()));
            // A changed address is not verified yet.
            sets.push("email_verified = FALSE".to_owned());
        }
        if let Some(role) = &changes.role {
            push(&mut sets, "role", Some(role.clone()));
        }
        if let Some(active) = changes.is_active {
            sets.push(format!(
                "is_active = {}",
                if active { "TRUE" } else { "FALSE" }
            ));
        }
        let sql = format!("UPDATE users SET {} WHERE id = ${next}", sets.join(", "));
        on_pool!(self, pool => {
            let mut q = sqlx::query(&sql).bind(now);
            for t in &texts {
                q = q.bind(t);
            }
            q.bind(id).execute(pool).await.map(|r| r.rows_affected() == 1)
        })
        .map_err(map_err)
    }

    #[tracing::instrument(name = "users.delete", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn delete(&self, id: Uuid) -> Result<bool, CoreError> {
        let sql = "DELETE FROM users WHERE id = $1";
        on_pool!(self, pool => sqlx::query(sql).bind(id).execute(pool).await.map(|r| r.rows_affected() == 1))
            .map_err(map_err)
    }

    #[tracing::instrument(name = "users.list_page", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn list_page(
        &self,
        filter: &UserFilter,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<UserRecord>, u64), CoreError> {
        let (clause, params) = filter_sql(filter);
        let n = params.len();
        let rows_sql = format!(
            "SELECT {COLUMNS} FROM users{clause} ORDER BY id LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let count_sql = format!("SELECT COUNT(*) FROM users{clause}");
        on_pool!(self, pool => async {
            let mut q = sqlx::query_as::<_, Row>(&rows_sql);
            for p in &params {
                q = q.bind(p);
            }
            let rows = q.bind(clamp(limit)).bind(clamp(offset)).fetch_all(pool).await?;
            let mut c = sqlx::query_scalar::<_, i64>(&count_sql);
            for p in &params {
                c = c.bind(p);
            }
            let total = c.fetch_one(pool).await?;
            Ok::<_, sqlx::Error>((
                rows.into_iter().map(UserRecord::from).collect(),
                u64::try_from(total).unwrap_or(0),
            ))
        }.await)
        .map_err(map_err)
    }

    #[tracing::instrument(name = "users.list_after", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn list_after(
        &self,
        filter: &UserFilter,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<UserRecord>, CoreError> {
        let (clause, params) = filter_sql(filter);
        let n = params.len();
        let keyset = match (after.is_some(), clause.is_empty()) {
            (false, _) => String::new(),
            (true, true) => format!(" WHERE id > ${}", n + 1),
            (true, false) => format!(" AND id > ${}", n + 1),
        };
        let limit_param = if after.is_some() { n + 2 } else { n + 1 };
        let sql =
            format!("SELECT {COLUMNS} FROM users{clause}{keyset} ORDER BY id LIMIT ${limit_param}");
        on_pool!(self, pool => {
            let mut q = sqlx::query_as::<_, Row>(&sql);
            for p in &params {
                q = q.bind(p);
            }
            if let Some(after) = after {
                q = q.bind(after);
            }
            q.bind(clamp(limit)).fetch_all(pool).await
        })
        .map(|rows| rows.into_iter().map(UserRecord::from).collect())
        .map_err(map_err)
    }

    #[tracing::instrument(name = "users.stats", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn stats(&self) -> Result<UserStats, CoreError> {
        let totals =
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN is_active THEN 1 ELSE 0 END), 0) FROM users";
        let roles = "SELECT role, COUNT(*) FROM users GROUP BY role";
        on_pool!(self, pool => async {
            let (total, active): (i64, i64) = sqlx::query_as(totals).fetch_one(pool).await?;
            let by_role: Vec<(String, i64)> = sqlx::query_as(roles).fetch_all(pool).await?;
            Ok::<_, sqlx::Error>(UserStats {
                total: u64::try_from(total).unwrap_or(0),
                active: u64::try_from(active).unwrap_or(0),
                by_role: by_role
                    .into_iter()
                    .map(|(r, n)| (r, u64::try_from(n).unwrap_or(0)))
                    .collect(),
            })
        }.await)
        .map_err(map_err)
    }

    #[tracing::instrument(name = "users.set_encrypted", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn set_encrypted(&self, rows: &[Reencrypted]) -> Result<u64, CoreError> {
        let sql = "UPDATE users SET email_enc = $1, full_name_enc = $2 WHERE id = $3 \
                   AND email_enc = $4 AND full_name_enc IS NOT DISTINCT FROM $5";
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let mut done = 0;
            for r in rows {
                done += sqlx::query(sql)
                    .bind(&r.email)
                    .bind(&r.name)
                    .bind(r.id)
                    .bind(&r.old_email)
                    .bind(&r.old_name)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            Ok(done)
        }.await)
        .map_err(map_err)
    }

    fn stream(&self, filter: &UserFilter) -> BoxStream<'static, Result<UserRecord, CoreError>> {
        let db = self.clone();
        let filter = filter.clone();
        // Keyset pages by id, each one short query: the connection is back
        // in the pool before a row of the page is handed on, so a reader as
        // slow as its HTTP client holds none. `Some(after)`: the next page
        // starts after that id; `None`: the last page was read.
        futures_util::stream::try_unfold(Some(None), move |next: Option<Option<Uuid>>| {
            let (db, filter) = (db.clone(), filter.clone());
            async move {
                let Some(after) = next else {
                    return Ok(None);
                };
                let rows = db.list_after(&filter, after, STREAM_PAGE).await?;
                let next = match rows.last() {
                    Some(last) if rows.len() as u64 == STREAM_PAGE => Some(Some(last.id)),
                    _ => None,
                };
                Ok(Some((rows, next)))
            }
        })
        .map_ok(|rows| futures_util::stream::iter(rows.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }
}
