//! Sign-in latency with a passkey against a password login, on one running
//! service, one request at a time: the server's part only (the software
//! authenticator signs between the two passkey requests, outside the
//! timing). Prints the median and p90 of each and their ratio.
//!
//! `passkey-latency --url http://127.0.0.1:8000 --rounds 200` against a
//! service with rate limits off (`RATE_LIMIT_ENABLED=false`) and its
//! default `WEBAUTHN_*` (origin `http://localhost:3000`).

use std::error::Error;
use std::io::Write;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

#[derive(Parser)]
struct Args {
    /// The service's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Sign-ins of each kind.
    #[arg(long, default_value_t = 200)]
    rounds: usize,
    /// The origin the authenticator signs for (one of `WEBAUTHN_ORIGINS`).
    #[arg(long, default_value = "http://localhost:3000")]
    origin: String,
}

const PASSWORD: &str = "Bench-Passw0rd!x";

type Outcome<T> = Result<T, Box<dyn Error>>;

/// Fails with `what` unless the service answered `want`.
fn expect_status(got: u16, want: u16, what: &str) -> Outcome<()> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: HTTP {got}, expected {want}").into())
    }
}

struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Outcome<(u16, Value)> {
        let mut req = self.http.post(format!("{}{path}", self.url)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        Ok((status, res.json().await.unwrap_or(Value::Null)))
    }
}

/// The `percent`th percentile (nearest rank) of `sorted`, which is not empty.
fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    let last = sorted.len().saturating_sub(1);
    sorted[(last * percent).div_ceil(100).min(last)]
}

fn report(out: &mut impl Write, name: &str, mut times: Vec<Duration>) -> Outcome<Duration> {
    times.sort();
    let median = percentile(&times, 50);
    writeln!(
        out,
        "{name:>9}: median {:>7.2} ms   p90 {:>7.2} ms   ({} sign-ins)",
        median.as_secs_f64() * 1e3,
        percentile(&times, 90).as_secs_f64() * 1e3,
        times.len()
    )?;
    Ok(median)
}

#[tokio::main]
async fn main() -> Outcome<()> {
    let args = Args::parse();
    let client = Client {
        http: reqwest::Client::new(),
        url: args.url.trim_end_matches('/').to_owned(),
    };
    let origin = Url::parse(&args.origin)?;
    let name = format!("pk{}", std::process::id());
    let email = format!("{name}@example.com");
    let (status, _) = client
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": name, "email": email, "password": PASSWORD}),
        )
        .await?;
    expect_status(status, 201, "register")?;
    let login = json!({"email": email, "password": PASSWORD});
    let (_, body) = client
        .post("/api/v1/auth/login", None, login.clone())
        .await?;
    let token = body["access_token"]
        .as_str()
        .ok_or("no access token")?
        .to_owned();

    // One passkey (the soft token keeps no user handle: named sign-ins).
    let mut device = SoftPasskey::new(true);
    let (_, begun) = client
        .post(
            "/api/v1/auth/passkeys/register/begin",
            Some(&token),
            json!({}),
        )
        .await?;
    let mut options: CreationChallengeResponse = serde_json::from_value(begun["options"].clone())?;
    if let Some(sel) = options.public_key.authenticator_selection.as_mut() {
        sel.require_resident_key = false;
    }
    let made = device
        .do_registration(origin.clone(), options)
        .map_err(|e| format!("the soft token did not register: {e:?}"))?;
    let body = json!({"ceremony": begun["ceremony"], "credential": made});
    let (status, _) = client
        .post("/api/v1/auth/passkeys/register/finish", Some(&token), body)
        .await?;
    expect_status(status, 201, "passkey registration")?;

    let mut password = Vec::with_capacity(args.rounds);
    let mut passkey = Vec::with_capacity(args.rounds);
    for _ in 0..args.rounds {
        let started = Instant::now();
        let (status, _) = client
            .post("/api/v1/auth/login", None, login.clone())
            .await?;
        password.push(started.elapsed());
        expect_status(status, 200, "password login")?;

        let started = Instant::now();
        let (_, begun) = client
            .post(
                "/api/v1/auth/passkeys/login/begin",
                None,
                json!({"email": email}),
            )
            .await?;
        let begin = started.elapsed();
        let options: RequestChallengeResponse = serde_json::from_value(begun["options"].clone())?;
        let signed = device
            .do_authentication(origin.clone(), options)
            .map_err(|e| format!("the soft token did not sign: {e:?}"))?;
        let body = json!({"ceremony": begun["ceremony"], "credential": signed});
        let started = Instant::now();
        let (status, _) = client
            .post("/api/v1/auth/passkeys/login/finish", None, body)
            .await?;
        passkey.push(begin + started.elapsed());
        expect_status(status, 200, "passkey sign-in")?;
    }
    if args.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    let mut out = std::io::stdout().lock();
    let p = report(&mut out, "password", password)?;
    let k = report(&mut out, "passkey", passkey)?;
    writeln!(
        out,
        "passkey / password median: {:.3}",
        k.as_secs_f64() / p.as_secs_f64()
    )?;
    Ok(())
}
