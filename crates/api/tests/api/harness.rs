//! The one test harness: configuration, databases, the app, and requests.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use gatehouse_api::{AppConfig, AppState, Services};
use gatehouse_cache::memory::{
    MemoryDenylist, MemoryLoginThrottle, MemoryRateLimiter, MemoryUserCache,
};
use gatehouse_core::audit::{AuditTrail, ChainKey, StoredAuditSink};
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::service::{Adapters, UseCases};
use gatehouse_store::{Database, DiskBlobStore};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use time::OffsetDateTime;
use tower::ServiceExt;

mod proxy;

pub mod logs;
pub mod mail;
pub mod probes;
pub use proxy::{Proxy, postgres_addr};

pub const TEST_JWT_SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";
pub const TEST_KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const PEER: ([u8; 4], u16) = ([127, 0, 0, 1], 40_000);

/// Which database a test runs against.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

/// SQLite always; PostgreSQL too when `TEST_DATABASE_URL` is set (CI sets it).
pub fn backends() -> Vec<Backend> {
    let mut list = vec![Backend::Sqlite];
    if let Ok(url) = std::env::var("TEST_DATABASE_URL")
        && !url.trim().is_empty()
    {
        list.push(Backend::Postgres(url));
    }
    list
}

/// Settings every test starts from: small Argon2 costs, fixed keys.
pub fn base_vars() -> Vec<(String, String)> {
    [
        ("ENVIRONMENT", "development"),
        ("JWT_SECRET_KEY", TEST_JWT_SECRET),
        ("ARGON2_MEMORY_COST", "64"),
        ("ARGON2_TIME_COST", "1"),
        ("ARGON2_PARALLELISM", "1"),
        ("DATA_ENCRYPTION_KEYS", &format!("k1:{TEST_KEY_B64}")),
        ("BLIND_INDEX_KEY", TEST_KEY_B64),
        ("AUDIT_CHAIN_KEY", TEST_KEY_B64),
        ("DATABASE_ACQUIRE_TIMEOUT_SECS", "2"),
        // Tests log in many times from one address; the limits have their
        // own tests.
        ("RATE_LIMIT_ENABLED", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The audit chain key of [`base_vars`], for appends made directly.
pub fn chain_key() -> ChainKey {
    ChainKey::from_config(&config(&[]).core).unwrap()
}

pub fn config(overrides: &[(&str, &str)]) -> AppConfig {
    let mut vars = base_vars();
    for (k, v) in overrides {
        vars.retain(|(name, _)| name != k);
        vars.push(((*k).to_owned(), (*v).to_owned()));
    }
    AppConfig::from_vars(vars).expect("test configuration is valid")
}

/// A migrated, empty database of the given backend, private to one test.
pub struct TestDb {
    pub db: Database,
    /// Kept alive for the SQLite file's lifetime.
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Another handle on the same database (the first keeps it alive).
    pub fn share(&self) -> Self {
        Self {
            db: self.db.clone(),
            _dir: None,
        }
    }

    pub async fn new(backend: &Backend) -> Self {
        Self::with_postgres_addr(backend, None).await
    }

    /// For PostgreSQL, `via` replaces the server address (used to put a
    /// proxy in between).
    pub async fn with_postgres_addr(backend: &Backend, via: Option<SocketAddr>) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                let db = Database::connect(&url, test_pool()).await.unwrap();
                db.migrate().await.unwrap();
                Self {
                    db,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres(url) => {
                let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(url)
                    .await
                    .expect("TEST_DATABASE_URL is reachable");
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                let mut options = PgConnectOptions::from_str(url)
                    .unwrap()
                    .options([("search_path", schema.as_str())]);
                if let Some(addr) = via {
                    options = options.host(&addr.ip().to_string()).port(addr.port());
                }
                let pool = PgPoolOptions::new()
                    .max_connections(5)
                    .acquire_timeout(std::time::Duration::from_secs(2))
                    .connect_lazy_with(options);
                let db = Database::Postgres(pool);
                db.migrate().await.unwrap();
                Self { db, _dir: None }
            }
        }
    }
}

/// The real app on a real database.
pub struct TestApp {
    pub router: gatehouse_api::App,
    #[allow(dead_code, reason = "for tests that reach services directly")]
    pub state: AppState,
    pub db: TestDb,
    pub clock: Arc<TestClock>,
    /// Mail queued by the app, delivered when a test asks.
    #[allow(dead_code, reason = "for the mail tests")]
    pub outbox: mail::Outbox,
    /// `UPLOAD_DIR`: private to this app, created by the first upload.
    pub upload_dir: std::path::PathBuf,
    _upload_root: tempfile::TempDir,
}

/// A clock tests move by hand (token expiry, lockout windows).
#[derive(Debug)]
pub struct TestClock(Mutex<OffsetDateTime>);

impl TestClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(SystemClock.now())))
    }

    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.0.lock().unwrap();
        *now += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

impl TestApp {
    pub async fn new(backend: &Backend) -> Self {
        Self::with(backend, &[], Router::new()).await
    }

    pub async fn with(
        backend: &Backend,
        overrides: &[(&str, &str)],
        extra: Router<AppState>,
    ) -> Self {
        let db = TestDb::new(backend).await;
        Self::on(db, config(overrides), extra)
    }

    pub fn on(db: TestDb, mut config: AppConfig, extra: Router<AppState>) -> Self {
        logs::install();
        let clock = TestClock::new();
        let store = Arc::new(db.db.clone());
        let upload_root = tempfile::tempdir().unwrap();
        if config.core.upload_dir == config.core.data_dir.join("uploads") {
            config.core.upload_dir = upload_root.path().join("uploads");
        }
        let upload_dir = config.core.upload_dir.clone();
        let key = ChainKey::from_config(&config.core).unwrap();
        let trail = Arc::new(AuditTrail::new(store.clone(), key));
        let mailer = Arc::new(mail::CapturingMailer::default());
        let limiter = Arc::new(MemoryRateLimiter::default());
        let adapters = Adapters {
            users: store.clone(),
            sessions: store.clone(),
            denylist: Arc::new(MemoryDenylist::default()),
            throttle: Arc::new(MemoryLoginThrottle::default()),
            cache: Arc::new(MemoryUserCache::default()),
            audit: Arc::new(StoredAuditSink::new(trail.clone(), clock.clone())),
            audit_trail: trail,
            mfa: store.clone(),
            api_keys: store.clone(),
            files: store.clone(),
            blobs: Arc::new(DiskBlobStore::new(&upload_dir)),
            clock: clock.clone(),
            mail_tokens: store.clone(),
            outbox: store.clone(),
            mailer: mailer.clone(),
            limiter: limiter.clone(),
            passkeys: store.clone(),
        };
        let use_cases = UseCases::new(&config.core, adapters).unwrap();
        let outbox = mail::Outbox {
            mailer,
            delivery: use_cases.mail_delivery.clone(),
        };
        let services = Services {
            clock: clock.clone(),
            probes: vec![store],
            use_cases,
            limiter,
        };
        let state = AppState::new(config, services);
        let router = gatehouse_api::build(state.clone(), routes_with(extra));
        Self {
            router,
            state,
            db,
            clock,
            outbox,
            upload_dir,
            _upload_root: upload_root,
        }
    }

    /// Sends a request as if from [`PEER`], with `Host: localhost` unless set.
    pub async fn send(&self, mut req: Request<Body>) -> TestResponse {
        if !req.headers().contains_key(http::header::HOST) {
            req.headers_mut()
                .insert(http::header::HOST, "localhost".parse().unwrap());
        }
        if req.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(PEER)));
        }
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post_json(&self, path: &str, body: &str) -> TestResponse {
        self.send(
            Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(body.to_owned()))
                .unwrap(),
        )
        .await
    }
}

/// The production route table plus a test's extra routes.
fn routes_with(extra: Router<AppState>) -> Router<AppState> {
    gatehouse_api::routes().merge(extra)
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts an RFC 9457 problem with this status and code, whose
    /// `request_id` matches the header; returns the body.
    pub fn assert_problem(&self, status: StatusCode, code: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["status"], status.as_u16());
        assert_eq!(body["type"], "about:blank");
        assert!(body["title"].is_string());
        assert!(body["detail"].is_string());
        assert_eq!(
            body["request_id"].as_str(),
            self.header("x-request-id"),
            "request_id matches the header"
        );
        body
    }
}

pub const PASSWORD: &str = "Str0ng-Passw0rd!";

impl TestApp {
    pub async fn get_with_token(&self, path: &str, token: &str) -> TestResponse {
        self.send(
            Request::get(path)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// Registers `username` with `<username>@example.com` and [`PASSWORD`].
    pub async fn register(&self, username: &str) -> Value {
        let body = serde_json::json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "password": PASSWORD,
        });
        let res = self
            .post_json("/api/v1/auth/register", &body.to_string())
            .await;
        assert_eq!(
            res.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&res.body)
        );
        res.json()
    }

    pub async fn login_raw(&self, email: &str, password: &str) -> TestResponse {
        let body = serde_json::json!({"email": email, "password": password});
        self.post_json("/api/v1/auth/login", &body.to_string())
            .await
    }

    /// Logs in and returns (access token, refresh token from the cookie).
    pub async fn login(&self, email: &str, password: &str) -> (String, String) {
        let res = self.login_raw(email, password).await;
        assert_eq!(
            res.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&res.body)
        );
        let access = res.json()["access_token"].as_str().unwrap().to_owned();
        (
            access,
            res.refresh_cookie().expect("login sets the refresh cookie"),
        )
    }
}

impl TestResponse {
    /// Value of the `refresh_token` cookie this response sets (`Some("")`
    /// when it clears it).
    pub fn refresh_cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("refresh_token="))
            .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
    }

    pub fn set_cookie_header(&self) -> Option<&str> {
        self.header("set-cookie")
    }
}

impl TestApp {
    /// Runs `sql` on the test database.
    pub async fn exec(&self, sql: &str) {
        match &self.db.db {
            Database::Sqlite(p) => sqlx::query(sql).execute(p).await.map(drop),
            Database::Postgres(p) => sqlx::query(sql).execute(p).await.map(drop),
        }
        .unwrap();
    }

    /// A single integer from `sql`.
    pub async fn count(&self, sql: &str) -> i64 {
        match &self.db.db {
            Database::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
            Database::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        }
        .unwrap()
    }

    /// A single text value from `sql`.
    pub async fn text(&self, sql: &str) -> String {
        match &self.db.db {
            Database::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
            Database::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        }
        .unwrap()
    }

    /// Registers `username` with `role` and logs in: (user id, access token).
    pub async fn account(&self, username: &str, role: &str) -> (String, String) {
        let user = self.register(username).await;
        let id = user["id"].as_str().unwrap().to_owned();
        if role != "user" {
            // Set before the first login, so no cache holds the old role.
            self.exec(&format!(
                "UPDATE users SET role = '{role}' WHERE username = '{username}'"
            ))
            .await;
        }
        let (token, _) = self
            .login(&format!("{username}@example.com"), PASSWORD)
            .await;
        (id, token)
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> TestResponse {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }
}

/// Pool settings for tests: a generous wait for a connection, since the
/// whole suite runs in parallel on a small machine.
fn test_pool() -> gatehouse_store::PoolSettings {
    gatehouse_store::PoolSettings {
        acquire_timeout: std::time::Duration::from_secs(60),
        ..Default::default()
    }
}
