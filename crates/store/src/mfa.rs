//! `MfaRepo` and `ApiKeyRepo` on both backends.

use async_trait::async_trait;
use gatehouse_core::CoreError;
use gatehouse_core::ports::{ApiKeyRecord, ApiKeyRepo, MfaRepo, MfaState, TotpSecrets};
use uuid::Uuid;

use crate::{Database, map_err};

#[derive(sqlx::FromRow)]
struct MfaRow {
    totp_secret_enc: Option<String>,
    totp_pending_enc: Option<String>,
    totp_last_step: Option<i64>,
}

#[async_trait]
impl MfaRepo for Database {
    #[tracing::instrument(name = "mfa.mfa_state", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn mfa_state(&self, user_id: Uuid) -> Result<Option<MfaState>, CoreError> {
        let sql =
            "SELECT totp_secret_enc, totp_pending_enc, totp_last_step FROM users WHERE id = $1";
        on_pool!(self, pool => sqlx::query_as::<_, MfaRow>(sql).bind(user_id).fetch_optional(pool).await)
            .map(|row| {
                row.map(|r| MfaState {
                    secret_enc: r.totp_secret_enc,
                    pending_enc: r.totp_pending_enc,
                    last_step: r.totp_last_step,
                })
            })
            .map_err(map_err)
    }

    #[tracing::instrument(name = "mfa.set_pending", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn set_pending(&self, user_id: Uuid, pending_enc: &str) -> Result<(), CoreError> {
        let sql = "UPDATE users SET totp_pending_enc = $1 WHERE id = $2";
        on_pool!(self, pool => sqlx::query(sql).bind(pending_enc).bind(user_id).execute(pool).await.map(drop))
            .map_err(map_err)
    }

    #[tracing::instrument(name = "mfa.enable", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn enable(
        &self,
        user_id: Uuid,
        secret_enc: &str,
        step: i64,
        code_hashes: &[String],
        now: i64,
    ) -> Result<(), CoreError> {
        let set = "UPDATE users SET totp_secret_enc = $1, totp_pending_enc = NULL, \
                   totp_last_step = $2, mfa_enabled = TRUE, updated_at = $3 WHERE id = $4";
        let clear = "DELETE FROM backup_codes WHERE user_id = $1";
        let insert =
            "INSERT INTO backup_codes (id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)";
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query(set).bind(secret_enc).bind(step).bind(now).bind(user_id).execute(&mut *tx).await?;
            sqlx::query(clear).bind(user_id).execute(&mut *tx).await?;
            for hash in code_hashes {
                sqlx::query(insert)
                    .bind(Uuid::now_v7())
                    .bind(user_id)
                    .bind(hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }.await)
        .map_err(map_err)
    }

    #[tracing::instrument(name = "mfa.disable", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn disable(&self, user_id: Uuid, now: i64) -> Result<(), CoreError> {
        let set = "UPDATE users SET totp_secret_enc = NULL, totp_pending_enc = NULL, \
                   totp_last_step = NULL, mfa_enabled = FALSE, updated_at = $1 WHERE id = $2";
        let clear = "DELETE FROM backup_codes WHERE user_id = $1";
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query(set).bind(now).bind(user_id).execute(&mut *tx).await?;
            sqlx::query(clear).bind(user_id).execute(&mut *tx).await?;
            tx.commit().await
        }.await)
        .map_err(map_err)
    }

    #[tracing::instrument(name = "mfa.accept_step", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn accept_step(&self, user_id: Uuid, step: i64) -> Result<bool, CoreError> {
        let sql = "UPDATE users SET totp_last_step = $1 WHERE id = $2 \
                   AND (totp_last_step IS NULL OR totp_last_step < $1)";
        on_pool!(self, pool => sqlx::query(sql).bind(step).bind(user_id).execute(pool).await.map(|r| r.rows_affected() == 1))
            .map_err(map_err)
    }

    #[tracing::instrument(name = "mfa.set_totp_encrypted", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn set_totp_encrypted(
        &self,
        user_id: Uuid,
        old: TotpSecrets<'_>,
        new: TotpSecrets<'_>,
    ) -> Result<bool, CoreError> {
        let sql = "UPDATE users SET totp_secret_enc = $1, totp_pending_enc = $2 WHERE id = $3 \
                   AND totp_secret_enc IS NOT DISTINCT FROM $4 \
                   AND totp_pending_enc IS NOT DISTINCT FROM $5";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(new.secret)
            .bind(new.pending)
            .bind(user_id)
            .bind(old.secret)
            .bind(old.pending)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1))
        .map_err(map_err)
    }

    #[tracing::instrument(name = "mfa.use_backup_code", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn use_backup_code(
        &self,
        user_id: Uuid,
        hash: &str,
        now: i64,
    ) -> Result<bool, CoreError> {
        let sql = "UPDATE backup_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 \
                   AND used_at IS NULL";
        on_pool!(self, pool => sqlx::query(sql).bind(now).bind(user_id).bind(hash).execute(pool).await.map(|r| r.rows_affected() == 1))
            .map_err(map_err)
    }
}

const KEY_COLUMNS: &str = "id, user_id, name, prefix, key_hash, scopes, created_at, expires_at, \
                           last_used_at, revoked_at";

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Uuid,
    user_id: Uuid,
    name: String,
    prefix: String,
    key_hash: String,
    scopes: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<KeyRow> for ApiKeyRecord {
    fn from(r: KeyRow) -> Self {
        Self {
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            prefix: r.prefix,
            key_hash: r.key_hash,
            scopes: r.scopes,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

#[async_trait]
impl ApiKeyRepo for Database {
    #[tracing::instrument(name = "api_keys.create_key", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn create_key(&self, k: &ApiKeyRecord) -> Result<(), CoreError> {
        let sql = "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, scopes, created_at, \
                   expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(k.id)
            .bind(k.user_id)
            .bind(&k.name)
            .bind(&k.prefix)
            .bind(&k.key_hash)
            .bind(&k.scopes)
            .bind(k.created_at)
            .bind(k.expires_at)
            .execute(pool)
            .await
            .map(drop))
        .map_err(map_err)
    }

    #[tracing::instrument(name = "api_keys.keys_of", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn keys_of(&self, user_id: Uuid) -> Result<Vec<ApiKeyRecord>, CoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id"
        );
        on_pool!(self, pool => sqlx::query_as::<_, KeyRow>(&sql).bind(user_id).fetch_all(pool).await)
            .map(|rows| rows.into_iter().map(ApiKeyRecord::from).collect())
            .map_err(map_err)
    }

    #[tracing::instrument(name = "api_keys.key_by_prefix", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyRecord>, CoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE prefix = $1");
        on_pool!(self, pool => sqlx::query_as::<_, KeyRow>(&sql).bind(prefix).fetch_optional(pool).await)
            .map(|r| r.map(ApiKeyRecord::from))
            .map_err(map_err)
    }

    #[tracing::instrument(name = "api_keys.rotate_key", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn rotate_key(
        &self,
        id: Uuid,
        user_id: Uuid,
        prefix: &str,
        key_hash: &str,
    ) -> Result<bool, CoreError> {
        let sql = "UPDATE api_keys SET prefix = $1, key_hash = $2, last_used_at = NULL \
                   WHERE id = $3 AND user_id = $4 AND revoked_at IS NULL";
        on_pool!(self, pool => sqlx::query(sql).bind(prefix).bind(key_hash).bind(id).bind(user_id).execute(pool).await.map(|r| r.rows_affected() == 1))
            .map_err(map_err)
    }

    #[tracing::instrument(name = "api_keys.revoke_key", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn revoke_key(&self, id: Uuid, user_id: Uuid, now: i64) -> Result<bool, CoreError> {
        let sql = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL";
        on_pool!(self, pool => sqlx::query(sql).bind(now).bind(id).bind(user_id).execute(pool).await.map(|r| r.rows_affected() == 1))
            .map_err(map_err)
    }

    #[tracing::instrument(name = "api_keys.touch_key", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn touch_key(&self, id: Uuid, now: i64) -> Result<(), CoreError> {
        let sql = "UPDATE api_keys SET last_used_at = $1 WHERE id = $2";
        on_pool!(self, pool => sqlx::query(sql).bind(now).bind(id).execute(pool).await.map(drop))
            .map_err(map_err)
    }
}
