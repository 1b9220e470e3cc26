//! `PasskeyRepo` on both backends: passkeys and WebAuthn ceremony state.

use async_trait::async_trait;
use gatehouse_core::CoreError;
use gatehouse_core::ports::{CeremonyRecord, PasskeyRecord, PasskeyRepo, PasskeyUse, Removal};
use uuid::Uuid;

use crate::{Database, map_err};

const COLUMNS: &str = "id, user_id, credential_id, name, credential, mac, sign_count, \
                       backup_eligible, backed_up, transports, created_at, last_used_at";

#[derive(sqlx::FromRow)]
struct PasskeyRow {
    id: Uuid,
    user_id: Uuid,
    credential_id: String,
    name: String,
    credential: String,
    mac: String,
    sign_count: i64,
    backup_eligible: bool,
    backed_up: bool,
    transports: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl From<PasskeyRow> for PasskeyRecord {
    fn from(r: PasskeyRow) -> Self {
        Self {
            id: r.id,
            user_id: r.user_id,
            credential_id: r.credential_id,
            name: r.name,
            credential: r.credential,
            mac: r.mac,
            sign_count: r.sign_count,
            backup_eligible: r.backup_eligible,
            backed_up: r.backed_up,
            transports: r.transports,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct CeremonyRow {
    digest: String,
    purpose: String,
    user_id: Option<Uuid>,
    bound_to: Option<String>,
    state: String,
    mac: String,
    expires_at: i64,
}

/// Deletes the passkey unless the account would be left without a way to
/// sign in: no password (an empty hash) and no other passkey.
const REMOVE: &str = "DELETE FROM passkeys WHERE id = $1 AND user_id = $2 AND ( \
     EXISTS (SELECT 1 FROM users WHERE id = $2 AND password_hash <> '') \
     OR (SELECT COUNT(*) FROM passkeys WHERE user_id = $2) > 1)";

#[async_trait]
impl PasskeyRepo for Database {
    #[tracing::instrument(name = "passkeys.add", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn add_passkey(&self, p: &PasskeyRecord) -> Result<(), CoreError> {
        let sql = format!(
            "INSERT INTO passkeys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        on_pool!(self, pool => sqlx::query(&sql)
            .bind(p.id)
            .bind(p.user_id)
            .bind(&p.credential_id)
            .bind(&p.name)
            .bind(&p.credential)
            .bind(&p.mac)
            .bind(p.sign_count)
            .bind(p.backup_eligible)
            .bind(p.backed_up)
            .bind(&p.transports)
            .bind(p.created_at)
            .bind(p.last_used_at)
            .execute(pool)
            .await
            .map(drop))
        .map_err(map_err)
    }

    #[tracing::instrument(name = "passkeys.of", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn passkeys_of(&self, user_id: Uuid) -> Result<Vec<PasskeyRecord>, CoreError> {
        let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY id");
        on_pool!(self, pool => sqlx::query_as::<_, PasskeyRow>(&sql).bind(user_id).fetch_all(pool).await)
            .map(|rows| rows.into_iter().map(PasskeyRecord::from).collect())
            .map_err(map_err)
    }

    #[tracing::instrument(name = "passkeys.by_credential", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn passkey_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<PasskeyRecord>, CoreError> {
        let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE credential_id = $1");
        on_pool!(self, pool => sqlx::query_as::<_, PasskeyRow>(&sql).bind(credential_id).fetch_optional(pool).await)
            .map(|r| r.map(PasskeyRecord::from))
            .map_err(map_err)
    }

    #[tracing::instrument(name = "passkeys.record_use", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn record_passkey_use(&self, u: &PasskeyUse<'_>) -> Result<bool, CoreError> {
        let sql = "UPDATE passkeys SET sign_count = $1, backed_up = $2, credential = $3, \
                   mac = $4, last_used_at = $5 WHERE id = $6 \
                   AND (sign_count < $1 OR (sign_count = 0 AND $1 = 0))";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(u.sign_count)
            .bind(u.backed_up)
            .bind(u.credential)
            .bind(u.mac)
            .bind(u.now)
            .bind(u.id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1))
        .map_err(map_err)
    }

    #[tracing::instrument(name = "passkeys.rename", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn rename_passkey(&self, user_id: Uuid, id: Uuid, name: &str) -> Result<bool, CoreError> {
        let sql = "UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3";
        on_pool!(self, pool => sqlx::query(sql).bind(name).bind(id).bind(user_id).execute(pool).await.map(|r| r.rows_affected() == 1))
            .map_err(map_err)
    }

    #[tracing::instrument(name = "passkeys.remove", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn remove_passkey(&self, user_id: Uuid, id: Uuid) -> Result<Removal, CoreError> {
        let removed = match self {
            // One writer at a time: the statement's check and delete are
            // one step.
            Database::Sqlite(pool) => sqlx::query(REMOVE)
                .bind(id)
                .bind(user_id)
                .execute(pool)
                .await
                .map_err(map_err)?
                .rows_affected(),
            // Two removals of an account's last two passkeys must not both
            // pass the check: the account's row serialises them until commit.
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(map_err)?;
                sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let removed = sqlx::query(REMOVE)
                    .bind(id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                tx.commit().await.map_err(map_err)?;
                removed
            }
        };
        if removed == 1 {
            return Ok(Removal::Removed);
        }
        // Why not (for the answer only): it is not there, or it is the last.
        let exists = "SELECT COUNT(*) FROM passkeys WHERE id = $1 AND user_id = $2";
        let found: i64 = on_pool!(self, pool => sqlx::query_scalar(exists).bind(id).bind(user_id).fetch_one(pool).await)
            .map_err(map_err)?;
        Ok(if found == 0 {
            Removal::NotFound
        } else {
            Removal::LastFactor
        })
    }

    #[tracing::instrument(name = "passkeys.put_ceremony", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn put_ceremony(&self, c: &CeremonyRecord, now: i64) -> Result<(), CoreError> {
        let sweep = "DELETE FROM webauthn_ceremonies WHERE expires_at <= $1";
        let insert = "INSERT INTO webauthn_ceremonies (digest, purpose, user_id, bound_to, state, \
                      mac, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query(sweep).bind(now).execute(&mut *tx).await?;
            sqlx::query(insert)
                .bind(&c.digest)
                .bind(&c.purpose)
                .bind(c.user_id)
                .bind(&c.bound_to)
                .bind(&c.state)
                .bind(&c.mac)
                .bind(c.expires_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }.await)
        .map_err(map_err)
    }

    #[tracing::instrument(name = "passkeys.take_ceremony", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn take_ceremony(
        &self,
        digest: &str,
        now: i64,
    ) -> Result<Option<CeremonyRecord>, CoreError> {
        // Deleted whether or not it has expired; returned only before.
        let sql = "DELETE FROM webauthn_ceremonies WHERE digest = $1 RETURNING digest, purpose, \
                   user_id, bound_to, state, mac, expires_at";
        let row = on_pool!(self, pool => sqlx::query_as::<_, CeremonyRow>(sql).bind(digest).fetch_optional(pool).await)
            .map_err(map_err)?;
        Ok(row.filter(|r| r.expires_at > now).map(|r| CeremonyRecord {
            digest: r.digest,
            purpose: r.purpose,
            user_id: r.user_id,
            bound_to: r.bound_to,
            state: r.state,
            mac: r.mac,
            expires_at: r.expires_at,
        }))
    }
}
