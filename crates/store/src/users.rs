//! `UserRepo` on both backends.

use async_trait::async_trait;
use gatehouse_core::CoreError;
use gatehouse_core::ports::{NewUser, UserRecord, UserRepo};
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
    async fn create(&self, user: &NewUser) -> Result<(), CoreError> {
        let r = &user.record;
        let sql = "INSERT INTO users (id, username, username_key, email_index, email_enc, \
                   full_name_enc, password_hash, role, is_active, email_verified, mfa_enabled, \
                   auth_version, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
        on_pool!(self, pool => sqlx::query(sql)
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
            .execute(pool)
            .await
            .map(drop))
        .map_err(map_err)
    }

    async fn by_id(&self, id: Uuid) -> Result<Option<UserRecord>, CoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        on_pool!(self, pool => sqlx::query_as::<_, Row>(&sql).bind(id).fetch_optional(pool).await)
            .map(|r| r.map(UserRecord::from))
            .map_err(map_err)
    }

    async fn by_email_index(&self, index: &str) -> Result<Option<UserRecord>, CoreError> {
        self.user_where("email_index", index).await
    }

    async fn by_username_key(&self, key: &str) -> Result<Option<UserRecord>, CoreError> {
        self.user_where("username_key", key).await
    }

    async fn set_password_hash(&self, id: Uuid, hash: &str, now: i64) -> Result<(), CoreError> {
        let sql = "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3";
        on_pool!(self, pool => sqlx::query(sql).bind(hash).bind(now).bind(id).execute(pool).await.map(drop))
            .map_err(map_err)
    }
}
