//! `MailTokenRepo` and `OutboxRepo` on both backends. The outbox is claimed
//! under a lease: on PostgreSQL the claim skips rows another transaction
//! has locked (`FOR UPDATE SKIP LOCKED`), on SQLite the one writer at a
//! time makes the claiming `UPDATE` atomic; on both, a claimer that died
//! leaves its entries to be claimed again once the lease has passed.

use async_trait::async_trait;
use gatehouse_core::CoreError;
use gatehouse_core::ports::{
    ClaimedMail, IssuedMail, MailTokenRecord, MailTokenRepo, OutboxMail, OutboxRepo, Settlement,
    TokenPurpose,
};
use uuid::Uuid;

use crate::{Database, map_err};

pub(crate) const OUTBOX_INSERT: &str = "INSERT INTO mail_outbox \
    (id, kind, payload_enc, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $4)";

pub(crate) const TOKEN_INSERT: &str = "INSERT INTO mail_tokens (id, user_id, purpose, token_digest, \
    code_digest, address_index, bound_to, new_email_enc, new_email_index, created_at, \
    expires_at, code_expires_at, used_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

const TOKEN_COLUMNS: &str = "id, user_id, purpose, token_digest, code_digest, address_index, \
    bound_to, new_email_enc, new_email_index, created_at, expires_at, code_expires_at, used_at";

/// Queues one outbox entry on `$conn` (a pool or a transaction).
macro_rules! insert_outbox {
    ($conn:expr, $mail:expr) => {
        sqlx::query($crate::mail::OUTBOX_INSERT)
            .bind($mail.id)
            .bind(&$mail.kind)
            .bind(&$mail.payload_enc)
            .bind($mail.created_at)
            .execute($conn)
    };
}

/// Stores a token and queues its mails on `$tx`.
macro_rules! insert_issued {
    ($tx:expr, $issued:expr) => {
        async {
            let t = &$issued.token;
            let (new_enc, new_index) = match &t.new_email {
                Some((enc, index)) => (Some(enc.as_str()), Some(index.as_str())),
                None => (None, None),
            };
            sqlx::query($crate::mail::TOKEN_INSERT)
                .bind(t.id)
                .bind(t.user_id)
                .bind(t.purpose.as_str())
                .bind(&t.token_digest)
                .bind(&t.code_digest)
                .bind(&t.address_index)
                .bind(&t.bound_to)
                .bind(new_enc)
                .bind(new_index)
                .bind(t.created_at)
                .bind(t.expires_at)
                .bind(t.code_expires_at)
                .bind(t.used_at)
                .execute(&mut *$tx)
                .await?;
            for mail in &$issued.mails {
                insert_outbox!(&mut *$tx, mail).await?;
            }
            Ok::<(), sqlx::Error>(())
        }
    };
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: Uuid,
    user_id: Option<Uuid>,
    purpose: String,
    token_digest: String,
    code_digest: String,
    address_index: String,
    bound_to: String,
    new_email_enc: Option<String>,
    new_email_index: Option<String>,
    created_at: i64,
    expires_at: i64,
    code_expires_at: i64,
    used_at: Option<i64>,
}

impl TryFrom<TokenRow> for MailTokenRecord {
    type Error = CoreError;

    fn try_from(r: TokenRow) -> Result<Self, CoreError> {
        Ok(Self {
            id: r.id,
            user_id: r.user_id,
            purpose: TokenPurpose::parse(&r.purpose)
                .ok_or_else(|| CoreError::internal("stored mail token purpose is unknown"))?,
            token_digest: r.token_digest,
            code_digest: r.code_digest,
            address_index: r.address_index,
            bound_to: r.bound_to,
            new_email: r.new_email_enc.zip(r.new_email_index),
            created_at: r.created_at,
            expires_at: r.expires_at,
            code_expires_at: r.code_expires_at,
            used_at: r.used_at,
        })
    }
}

fn records(rows: Vec<TokenRow>) -> Result<Vec<MailTokenRecord>, CoreError> {
    rows.into_iter().map(MailTokenRecord::try_from).collect()
}

const SPEND: &str = "UPDATE mail_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL";

#[async_trait]
impl MailTokenRepo for Database {
    #[tracing::instrument(name = "mail.issue", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn issue(&self, issued: &IssuedMail) -> Result<(), CoreError> {
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            insert_issued!(tx, issued).await?;
            tx.commit().await
        }.await)
        .map_err(map_err)
    }

    #[tracing::instrument(name = "mail.token_by_digest", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn token_by_digest(&self, digest: &str) -> Result<Option<MailTokenRecord>, CoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM mail_tokens WHERE token_digest = $1");
        on_pool!(self, pool => sqlx::query_as::<_, TokenRow>(&sql).bind(digest).fetch_optional(pool).await)
            .map_err(map_err)?
            .map(MailTokenRecord::try_from)
            .transpose()
    }

    #[tracing::instrument(name = "mail.tokens_for_code", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn tokens_for_code(
        &self,
        address_index: &str,
        purposes: &[TokenPurpose],
        now: i64,
    ) -> Result<Vec<MailTokenRecord>, CoreError> {
        let slots: Vec<String> = (0..purposes.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM mail_tokens WHERE address_index = $1 \
             AND code_expires_at > $2 AND used_at IS NULL AND user_id IS NOT NULL \
             AND purpose IN ({}) ORDER BY created_at DESC LIMIT 20",
            slots.join(", ")
        );
        let rows = on_pool!(self, pool => {
            let mut q = sqlx::query_as::<_, TokenRow>(&sql).bind(address_index).bind(now);
            for p in purposes {
                q = q.bind(p.as_str());
            }
            q.fetch_all(pool).await
        })
        .map_err(map_err)?;
        records(rows)
    }

    #[tracing::instrument(name = "mail.confirm_verification", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn confirm_verification(
        &self,
        token: &MailTokenRecord,
        now: i64,
    ) -> Result<bool, CoreError> {
        let verify = "UPDATE users SET email_verified = TRUE, updated_at = $1 \
                      WHERE id = $2 AND email_index = $3";
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let spent = sqlx::query(SPEND).bind(now).bind(token.id).execute(&mut *tx).await?;
            let set = sqlx::query(verify)
                .bind(now)
                .bind(token.user_id)
                .bind(&token.bound_to)
                .execute(&mut *tx)
                .await?;
            if spent.rows_affected() != 1 || set.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            tx.commit().await.map(|()| true)
        }.await)
        .map_err(map_err)
    }

    #[tracing::instrument(name = "mail.confirm_email_change", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn confirm_email_change(
        &self,
        token: &MailTokenRecord,
        notice: &OutboxMail,
        now: i64,
    ) -> Result<bool, CoreError> {
        let Some((enc, index)) = &token.new_email else {
            return Ok(false);
        };
        let switch = "UPDATE users SET email_enc = $1, email_index = $2, email_verified = TRUE, \
                      updated_at = $3 WHERE id = $4 AND email_index = $5";
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let spent = sqlx::query(SPEND).bind(now).bind(token.id).execute(&mut *tx).await?;
            let set = sqlx::query(switch)
                .bind(enc)
                .bind(index)
                .bind(now)
                .bind(token.user_id)
                .bind(&token.bound_to)
                .execute(&mut *tx)
                .await?;
            if spent.rows_affected() != 1 || set.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            insert_outbox!(&mut *tx, notice).await?;
            tx.commit().await.map(|()| true)
        }.await)
        .map_err(map_err)
    }

    #[tracing::instrument(name = "mail.prune_tokens", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn prune_tokens(&self, cutoff: i64) -> Result<u64, CoreError> {
        let sql = "DELETE FROM mail_tokens WHERE expires_at < $1";
        on_pool!(self, pool => sqlx::query(sql).bind(cutoff).execute(pool).await.map(|r| r.rows_affected()))
            .map_err(map_err)
    }
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: Uuid,
    kind: String,
    payload: String,
    created_at: i64,
    attempts: i64,
}

/// Due entries: not given up, and not held by a live lease.
const DUE: &str = "SELECT id FROM mail_outbox WHERE gave_up_at IS NULL \
    AND next_attempt_at <= $3 AND (claimed_until IS NULL OR claimed_until < $3) \
    ORDER BY next_attempt_at, id LIMIT $4";

fn claim_sql(skip_locked: bool) -> String {
    // PostgreSQL: rows another claimer's transaction holds are skipped,
    // not waited for and then claimed twice.
    let lock = if skip_locked {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    format!(
        "UPDATE mail_outbox SET claimed_by = $1, claimed_until = $2, attempts = attempts + 1 \
         WHERE id IN ({DUE}{lock}) \
         RETURNING id, kind, COALESCE(payload_enc, '') AS payload, created_at, \
         attempts - 1 AS attempts"
    )
}

#[async_trait]
impl OutboxRepo for Database {
    #[tracing::instrument(name = "outbox.enqueue", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn enqueue(&self, mail: &OutboxMail) -> Result<(), CoreError> {
        on_pool!(self, pool => insert_outbox!(pool, mail).await.map(drop)).map_err(map_err)
    }

    #[tracing::instrument(name = "outbox.claim", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn claim(
        &self,
        claimer: Uuid,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedMail>, CoreError> {
        let sql = claim_sql(matches!(self, Database::Postgres(_)));
        let mut rows = on_pool!(self, pool => sqlx::query_as::<_, ClaimRow>(&sql)
            .bind(claimer)
            .bind(now.saturating_add(lease_ms))
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)
        .map_err(map_err)?;
        // `RETURNING` follows no order: mail goes out in the order written
        // (ids are time-ordered).
        rows.sort_by_key(|r| (r.created_at, r.id));
        Ok(rows
            .into_iter()
            .map(|r| ClaimedMail {
                id: r.id,
                kind: r.kind,
                payload_enc: r.payload,
                created_at: r.created_at,
                attempts: r.attempts,
            })
            .collect())
    }

    #[tracing::instrument(name = "outbox.settle", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn settle(
        &self,
        id: Uuid,
        claimer: Uuid,
        outcome: Settlement<'_>,
    ) -> Result<bool, CoreError> {
        let (sql, at, error) = match outcome {
            Settlement::Delivered => (
                "DELETE FROM mail_outbox WHERE id = $1 AND claimed_by = $2",
                None,
                None,
            ),
            Settlement::Retry { at, error } => (
                "UPDATE mail_outbox SET claimed_by = NULL, claimed_until = NULL, \
                 next_attempt_at = $3, last_error = $4 WHERE id = $1 AND claimed_by = $2",
                Some(at),
                Some(error),
            ),
            Settlement::GiveUp { at, error } => (
                "UPDATE mail_outbox SET claimed_by = NULL, claimed_until = NULL, \
                 payload_enc = NULL, gave_up_at = $3, last_error = $4 \
                 WHERE id = $1 AND claimed_by = $2",
                Some(at),
                Some(error),
            ),
        };
        on_pool!(self, pool => {
            let mut q = sqlx::query(sql).bind(id).bind(claimer);
            if let (Some(at), Some(error)) = (at, error) {
                q = q.bind(at).bind(error);
            }
            q.execute(pool).await.map(|r| r.rows_affected() == 1)
        })
        .map_err(map_err)
    }
}

/// Stores a new user and, for a registration, its verification token and
/// mail, in one transaction.
pub(crate) async fn create_user_with_mail(
    db: &Database,
    insert_user: &str,
    user: &gatehouse_core::ports::NewUser,
) -> Result<(), sqlx::Error> {
    let r = &user.record;
    on_writer!(db, conn => async {
        let mut tx = sqlx::Connection::begin(conn).await?;
        sqlx::query(insert_user)
            .bind(r.id)
            .bind(&r.username)
            .bind(&user.username_key)
            .bind(&user.email_index)
            .bind(&r.email_enc)
            .bind(&r.full_name_enc)
            .bind(&r.password_hash)
            .bind(&r.role)
            .bind(r.is_active)
            .bind(r.email_verified)
            .bind(r.mfa_enabled)
            .bind(r.auth_version)
            .bind(r.created_at)
            .bind(r.updated_at)
            .execute(&mut *tx)
            .await?;
        if let Some(issued) = &user.verification {
            insert_issued!(tx, issued).await?;
        }
        tx.commit().await
    }.await)
}
