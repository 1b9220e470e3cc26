//! Fills a Gatehouse database with N users, encrypted exactly as the service
//! stores them (for the export-memory benchmark). Fast path: one multi-row
//! transaction per batch, a fixed password hash.

use std::io::Write;
use std::sync::Arc;

use clap::Parser;
use gatehouse_core::config::{DataKey, DataKeys, parse_base64_key};
use gatehouse_core::crypto::{BlindIndex, FieldCipher};
use gatehouse_store::{Database, PoolSettings};

#[derive(Debug, Parser)]
struct Args {
    #[arg(long)]
    database_url: String,
    #[arg(long)]
    count: u64,
    /// `kid:base64` data key (as DATA_ENCRYPTION_KEYS).
    #[arg(long)]
    data_key: String,
    /// base64 blind-index key (as BLIND_INDEX_KEY).
    #[arg(long)]
    blind_key: String,
    #[arg(long, default_value_t = 5_000)]
    batch: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let keys = Arc::new(DataKeys::parse(&args.data_key)?);
    let cipher = FieldCipher::new(keys);
    let blind = BlindIndex::new(Arc::new(DataKey::new(
        "blind",
        parse_base64_key(&args.blind_key)?,
    )));
    let db = Database::connect(&args.database_url, PoolSettings::default()).await?;
    db.migrate().await?;
    let Database::Sqlite(pool) = &db else {
        return Err("seed-users writes SQLite databases".into());
    };
    // Any valid Argon2id PHC string: nobody logs in as these users.
    let hash =
        "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$2Zqv6bW1C1y9c6YH8c0xW4tCF2sZf8nq2cVt7A1YgkE";
    let started = std::time::Instant::now();
    let mut n = 0u64;
    while n < args.count {
        let mut tx = pool.begin().await?;
        let end = (n + args.batch).min(args.count);
        for i in n..end {
            let email = format!("seed{i}@example.com");
            let id = uuid::Uuid::now_v7();
            let now = 1_800_000_000_000i64;
            sqlx::query(
                "INSERT INTO users (id, username, username_key, email_index, email_enc, \
                 full_name_enc, password_hash, role, is_active, email_verified, mfa_enabled, \
                 auth_version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'user', TRUE, FALSE, FALSE, 0, $8, $8)",
            )
            .bind(id)
            .bind(format!("seed_{i}"))
            .bind(format!("seed_{i}"))
            .bind(blind.of("email", &email))
            .bind(cipher.encrypt("email", &email)?)
            .bind(cipher.encrypt("full_name", &format!("Seeded Person {i}"))?)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        n = end;
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{{\"seeded\": {n}, \"seconds\": {:.1}}}",
        started.elapsed().as_secs_f64()
    )?;
    db.close().await;
    Ok(())
}
