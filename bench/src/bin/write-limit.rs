//! The limit the write scenarios of `bench/run.sh` are measured against:
//! the statements a refresh or a logout issues, through the same store
//! (sqlx, the same SQL and transactions), with no HTTP, JSON, access token,
//! audit entry or service logic around them. Pin it (`taskset -c`) to the
//! cores the service runs on. Prints one JSON line on stdout.
//!
//!   write-limit --database-url URL --user-id ID refresh --concurrency 16 --seconds 10
//!   write-limit --database-url URL --user-id ID logout  --concurrency 16 --seconds 10
//!   write-limit --database-url URL --user-id ID register --concurrency 16 --seconds 10
//!   write-limit --database-url URL --user-id ID seed --count 50000 > tokens
//!
//! `refresh`: each task keeps one login and spends its refresh token over
//! and over (the spend transaction of `POST /auth/refresh`). `logout`: logins are
//! made first (untimed), then each is ended once (find + revoke, as
//! `POST /auth/logout`); the run stops early if they run out. `register`:
//! each operation stores a new account with its verification token and
//! mail in one transaction (the store call of `POST /auth/register`, with
//! fields of the sizes the service writes, and no password hash computed).
//! `seed`: live
//! logins of the user for the service's logout scenario, one refresh token
//! per line.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use gatehouse_core::auth::refresh;
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::ports::{
    IssuedMail, MailTokenRecord, NewRefreshToken, NewSession, NewUser, NextRefreshToken,
    OutboxMail, SessionRepo, TokenPurpose, UserRecord, UserRepo,
};
use gatehouse_store::{Database, PoolSettings};
use secrecy::ExposeSecret;
use uuid::Uuid;

#[derive(Debug, Parser)]
struct Args {
    /// The service's database (`sqlite://…/gatehouse.db` or `postgres://…`).
    #[arg(long)]
    database_url: String,
    /// The account the logins belong to.
    #[arg(long)]
    user_id: Uuid,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Refresh {
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    Logout {
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Logins made before the timed part.
        #[arg(long, default_value_t = 60_000)]
        logins: usize,
    },
    Register {
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    Seed {
        #[arg(long)]
        count: usize,
    },
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn now_ms() -> i64 {
    SystemClock.now_ms()
}

/// A login of `user_id` as the service makes one; returns its token.
async fn login(db: &Database, user_id: Uuid) -> Result<String, Failure> {
    let issued = refresh::generate()?;
    let now = now_ms();
    let session = NewSession {
        id: Uuid::now_v7(),
        user_id,
        created_at: now,
        expires_at: now + 7 * 86_400_000,
        auth_time: now,
        ip: Some("127.0.0.1".into()),
        user_agent: Some("write-limit".into()),
    };
    let token = NewRefreshToken {
        id: Uuid::now_v7(),
        session_id: session.id,
        digest: issued.digest,
        created_at: now,
        expires_at: session.expires_at,
    };
    db.start(&session, &token).await?;
    Ok(issued.token.expose_secret().to_owned())
}

/// Spends `token` as the service does. Returns the next token.
async fn rotate(db: &Database, token: &str) -> Result<String, Failure> {
    let issued = refresh::generate()?;
    let now = now_ms();
    let next = NextRefreshToken {
        id: Uuid::now_v7(),
        digest: issued.digest,
        created_at: now,
        expires_at: now + 7 * 86_400_000,
    };
    db.spend(&refresh::digest(token), &next, now)
        .await?
        .ok_or("refresh token refused")?;
    Ok(issued.token.expose_secret().to_owned())
}

/// Ends the login of `token`: the service's find + revoke.
async fn logout(db: &Database, token: &str) -> Result<(), Failure> {
    let lookup = db
        .find_refresh(&refresh::digest(token))
        .await?
        .ok_or("refresh token not found")?;
    db.revoke(lookup.session_id, now_ms()).await?;
    Ok(())
}

/// `n` random bytes as hex: a stand-in of that size for a digest, a blind
/// index or ciphertext.
fn filler(n: usize) -> Result<String, Failure> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    Ok(hex::encode(bytes))
}

/// Stores one new account with its verification token and mail, as a
/// registration does (sizes as the service writes them: an Argon2id PHC
/// string, AES-GCM ciphertexts, HMAC blind indexes).
async fn register(db: &Database, n: u64) -> Result<(), Failure> {
    let now = now_ms();
    let id = Uuid::now_v7();
    let username = format!("limit_{}_{n}", filler(4)?);
    let email_index = filler(32)?;
    let record = UserRecord {
        id,
        username: username.clone(),
        email_enc: filler(60)?,
        full_name_enc: None,
        password_hash: format!(
            "$argon2id$v=19$m=65536,t=3,p=4${}${}",
            filler(16)?,
            filler(32)?
        ),
        role: "user".into(),
        is_active: true,
        email_verified: false,
        mfa_enabled: false,
        auth_version: 0,
        created_at: now,
        updated_at: now,
    };
    let token = MailTokenRecord {
        id: Uuid::now_v7(),
        user_id: Some(id),
        purpose: TokenPurpose::VerifyEmail,
        token_digest: filler(32)?,
        code_digest: filler(32)?,
        address_index: email_index.clone(),
        bound_to: email_index.clone(),
        new_email: None,
        created_at: now,
        expires_at: now + 86_400_000,
        code_expires_at: now + 900_000,
        used_at: None,
    };
    let mail = OutboxMail {
        id: Uuid::now_v7(),
        kind: "verify_email".into(),
        payload_enc: filler(400)?,
        created_at: now,
    };
    let user = NewUser {
        record,
        username_key: username,
        email_index,
        verification: Some(IssuedMail {
            token,
            mails: vec![mail],
        }),
    };
    db.create(&user).await?;
    Ok(())
}

/// Makes `count` logins, `concurrency` at a time.
async fn logins(
    db: &Database,
    user_id: Uuid,
    count: usize,
    concurrency: usize,
) -> Result<Vec<String>, Failure> {
    let mut tasks = tokio::task::JoinSet::new();
    let per_task = count.div_ceil(concurrency.max(1));
    for _ in 0..concurrency.max(1) {
        let db = db.clone();
        tasks.spawn(async move {
            let mut made = Vec::with_capacity(per_task);
            for _ in 0..per_task {
                made.push(login(&db, user_id).await?);
            }
            Ok::<_, Failure>(made)
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(done) = tasks.join_next().await {
        all.extend(done??);
    }
    all.truncate(count);
    Ok(all)
}

/// Runs `concurrency` tasks of `op` until `seconds` pass (or `op` says it
/// has nothing left); returns (operations, elapsed).
async fn timed<F, Fut>(concurrency: usize, seconds: u64, op: F) -> Result<(u64, Duration), Failure>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<bool, Failure>> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..concurrency.max(1) {
        let (op, done, stop) = (op.clone(), done.clone(), stop.clone());
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                if !op(n).await? {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, Failure>(())
        });
    }
    while let Some(finished) = tasks.join_next().await {
        finished??;
    }
    Ok((done.load(Ordering::Relaxed), started.elapsed()))
}

fn report(scenario: &str, concurrency: usize, ops: u64, elapsed: Duration) -> Result<(), Failure> {
    let secs = elapsed.as_secs_f64();
    let line = serde_json::json!({
        "scenario": scenario,
        "concurrency": concurrency,
        "ops": ops,
        "seconds": secs,
        "ops_per_sec": if secs > 0.0 { ops as f64 / secs } else { 0.0 },
    });
    writeln!(std::io::stdout().lock(), "{line}")?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args = Args::parse();
    let db = Database::connect(&args.database_url, PoolSettings::default()).await?;
    let user_id = args.user_id;
    match args.command {
        Command::Refresh {
            concurrency,
            seconds,
        } => {
            let chains = logins(&db, user_id, concurrency, concurrency).await?;
            let chains: Arc<Vec<tokio::sync::Mutex<String>>> =
                Arc::new(chains.into_iter().map(tokio::sync::Mutex::new).collect());
            let (ops, elapsed) = timed(concurrency, seconds, move |n| {
                let (db, chains) = (db.clone(), chains.clone());
                async move {
                    let mut token = chains[n].lock().await;
                    *token = rotate(&db, &token).await?;
                    Ok(true)
                }
            })
            .await?;
            report("refresh", concurrency, ops, elapsed)
        }
        Command::Logout {
            concurrency,
            seconds,
            logins: count,
        } => {
            let tokens = logins(&db, user_id, count, concurrency).await?;
            let tokens = Arc::new(std::sync::Mutex::new(tokens));
            let (ops, elapsed) = timed(concurrency, seconds, move |_| {
                let (db, tokens) = (db.clone(), tokens.clone());
                async move {
                    let next = tokens.lock().map_err(|_| "poisoned")?.pop();
                    match next {
                        Some(token) => logout(&db, &token).await.map(|()| true),
                        None => Ok(false),
                    }
                }
            })
            .await?;
            report("logout", concurrency, ops, elapsed)
        }
        Command::Register {
            concurrency,
            seconds,
        } => {
            let made = Arc::new(AtomicU64::new(0));
            let (ops, elapsed) = timed(concurrency, seconds, move |_| {
                let (db, made) = (db.clone(), made.clone());
                async move {
                    register(&db, made.fetch_add(1, Ordering::Relaxed)).await?;
                    Ok(true)
                }
            })
            .await?;
            report("register", concurrency, ops, elapsed)
        }
        Command::Seed { count } => {
            let tokens = logins(&db, user_id, count, 16).await?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for token in tokens {
                writeln!(out, "{token}")?;
            }
            out.flush()?;
            Ok(())
        }
    }
}
