//! A deployment under test: one instance on its own SQLite file, or two
//! instances sharing one PostgreSQL schema and one Redis prefix (when
//! `TEST_DATABASE_URL` and `TEST_REDIS_URL` are set).

use serde_json::{Value, json};

use super::{Server, gatehouse, serve};

pub const SECRET: &str = "attack-secret-0123456789-abcdefghijklmn";
pub const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const PASSWORD: &str = "Attack-Passw0rd!";

/// Where the instances keep their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// PostgreSQL and Redis, two instances.
    Shared,
}

/// The backends to run on: SQLite always, the shared one when configured.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if std::env::var("TEST_DATABASE_URL").is_ok() && std::env::var("TEST_REDIS_URL").is_ok() {
        all.push(Backend::Shared);
    }
    all
}

pub struct Deployment {
    /// Base URLs, one per instance.
    pub bases: Vec<String>,
    pub http: reqwest::Client,
    servers: Vec<Server>,
    vars: Vec<(String, String)>,
    schema: Option<(sqlx::PgPool, String)>,
    _dir: tempfile::TempDir,
}

impl Deployment {
    /// Starts the deployment with `extra` settings on top of small Argon2
    /// parameters and fixed keys.
    pub async fn start(backend: Backend, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = format!("k1:{KEY_B64}");
        let mut vars: Vec<(String, String)> = [
            ("JWT_SECRET_KEY", SECRET),
            ("DATA_ENCRYPTION_KEYS", key.as_str()),
            ("BLIND_INDEX_KEY", KEY_B64),
            ("AUDIT_CHAIN_KEY", KEY_B64),
            ("BIND_ADDR", "127.0.0.1:0"),
            ("METRICS_ADDR", "127.0.0.1:0"),
            ("ARGON2_MEMORY_COST", "64"),
            ("ARGON2_TIME_COST", "1"),
            ("ARGON2_PARALLELISM", "1"),
            ("LOG_LEVEL", "warn,gatehouse::serve=info"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let mut schema = None;
        let instances = if backend == Backend::Shared {
            let pg = std::env::var("TEST_DATABASE_URL").unwrap();
            let redis = std::env::var("TEST_REDIS_URL").unwrap();
            let name = format!("attack_{}", uuid::Uuid::now_v7().simple());
            let admin = sqlx::PgPool::connect(&pg).await.unwrap();
            sqlx::query(&format!("CREATE SCHEMA {name}"))
                .execute(&admin)
                .await
                .unwrap();
            let sep = if pg.contains('?') { '&' } else { '?' };
            vars.push((
                "DATABASE_URL".into(),
                format!("{pg}{sep}options=-c%20search_path%3D{name}"),
            ));
            if !extra.iter().any(|(k, _)| *k == "REDIS_URL") {
                vars.push(("REDIS_URL".into(), redis));
            }
            vars.push(("REDIS_KEY_PREFIX".into(), format!("{name}:")));
            schema = Some((admin, name));
            2
        } else {
            1
        };
        let mut deployment = Self {
            bases: Vec::new(),
            http: reqwest::Client::new(),
            servers: Vec::new(),
            vars,
            schema,
            _dir: dir,
        };
        deployment.launch(instances, &[]);
        deployment
    }

    /// Starts `instances` servers with the deployment's settings and `extra`.
    fn launch(&mut self, instances: usize, extra: &[(&str, &str)]) {
        let pairs: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(extra.iter().copied())
            .collect();
        // The first instance migrates before the second starts.
        self.servers = (0..instances)
            .map(|_| serve(gatehouse(self._dir.path(), &pairs)))
            .collect();
        self.bases = self
            .servers
            .iter()
            .map(|s| format!("http://{}", s.addr))
            .collect();
    }

    /// Stops every instance and starts them again on the same data, with
    /// `extra` settings on top (new addresses).
    pub fn restart(&mut self, extra: &[(&str, &str)]) {
        self.restart_with_logs(extra);
    }

    /// [`Deployment::restart`], returning the lines each stopped instance
    /// wrote to stdout (its shutdown included).
    pub fn restart_with_logs(&mut self, extra: &[(&str, &str)]) -> Vec<Vec<String>> {
        let instances = self.servers.len();
        let logs = self
            .servers
            .drain(..)
            .map(|server| {
                let (status, lines) = server.stop();
                assert!(status.success(), "clean shutdown: {status}");
                lines
            })
            .collect();
        self.launch(instances, extra);
        logs
    }

    /// `DATA_DIR` of every instance (uploads, the SQLite database).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("data")
    }

    /// The instance that serves request number `n` (round robin).
    pub fn base(&self, n: usize) -> &str {
        &self.bases[n % self.bases.len()]
    }

    pub fn url(&self, n: usize, path: &str) -> String {
        format!("{}{path}", self.base(n))
    }

    /// Registers `name` (`name@example.com`, [`PASSWORD`]); its user id.
    pub async fn register(&self, name: &str) -> String {
        let res = self
            .http
            .post(self.url(0, "/api/v1/auth/register"))
            .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "register {name}");
        res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Logs `name` in through instance `n`: the status and the body.
    pub async fn login(&self, n: usize, name: &str, password: &str) -> (u16, Value) {
        let res = self
            .http
            .post(self.url(n, "/api/v1/auth/login"))
            .json(&json!({"email": format!("{name}@example.com"), "password": password}))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Logs `name` in with the right password: the access token.
    pub async fn token(&self, name: &str) -> String {
        let (status, body) = self.login(0, name, PASSWORD).await;
        assert_eq!(status, 200, "login {name}: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A JSON request with a Bearer token through instance `n`.
    pub async fn call(
        &self,
        n: usize,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, self.url(n, path))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Runs SQL against the deployment's database: `{schema}.` names the
    /// shared schema on PostgreSQL and is dropped on SQLite.
    pub async fn sql(&self, statement: &str) {
        let Some((admin, name)) = self.schema.as_ref() else {
            let url = format!(
                "sqlite://{}",
                self.data_dir().join("gatehouse.db").display()
            );
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query(&statement.replace("{schema}.", ""))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            return;
        };
        sqlx::query(&statement.replace("{schema}", name))
            .execute(admin)
            .await
            .unwrap();
    }

    /// Stops every instance and returns what each wrote to stdout.
    pub fn stop_with_logs(&mut self) -> Vec<String> {
        self.servers
            .drain(..)
            .flat_map(|server| server.stop().1)
            .collect()
    }

    /// Makes `name` (`name@example.com`, [`PASSWORD`]) an admin with the
    /// `create-admin` command, on the deployment's settings; its access token.
    pub async fn admin(&self, name: &str) -> String {
        use std::io::Write;
        use std::process::Stdio;
        let pairs: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut child = gatehouse(self._dir.path(), &pairs)
            .args(["create-admin", "--username", name, "--email"])
            .arg(format!("{name}@example.com"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "create-admin {name}: {out:?}");
        self.token(name).await
    }

    /// Instance `n`'s public listener, as `host:port`.
    pub fn addr(&self, n: usize) -> &str {
        self.base(n).trim_start_matches("http://")
    }

    /// Stops every instance (cleanly) and drops the schema; every line the
    /// instances wrote to stdout.
    pub async fn finish_with_logs(mut self) -> Vec<String> {
        let mut lines = Vec::new();
        for server in self.servers.drain(..) {
            let (status, out) = server.stop();
            assert!(status.success(), "clean shutdown: {status}");
            lines.extend(out);
        }
        self.stop().await;
        lines
    }

    /// Stops every instance and drops the schema.
    pub async fn stop(mut self) {
        self.servers.clear();
        if let Some((admin, name)) = self.schema.take() {
            sqlx::query(&format!("DROP SCHEMA {name} CASCADE"))
                .execute(&admin)
                .await
                .unwrap();
        }
    }
}

/// A `redis-server` of a test's own, which it may stop and start again.
pub struct OwnRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    /// On a free port; `None` when `redis-server` is not installed.
    pub fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut redis = Self { port, child: None };
        redis.resume().then_some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same port; waits until it answers.
    pub fn resume(&mut self) -> bool {
        let Ok(child) = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
        else {
            return false;
        };
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    }

    /// Kills the server (an outage).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
