//! Sign-in latency with a passkey against a password login, on one running
//! service, one request at a time: the server's part only (the software
//! authenticator signs between the two passkey requests, outside the
//! timing). Prints the median and p90 of each and their ratio.
//!
//! `passkey-latency --url http://127.0.0.1:8000 --rounds 200` against a
//! service with rate limits off (`RATE_LIMIT_ENABLED=false`) and its
//! default `WEBAUTHN_*` (origin `http://localhost:3000`).

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

struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.url)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("the service answers");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(name: &str, mut times: Vec<Duration>) -> Duration {
    times.sort();
    let median = percentile(&times, 0.5);
    println!(
        "{name:>9}: median {:>7.2} ms   p90 {:>7.2} ms   ({} sign-ins)",
        median.as_secs_f64() * 1e3,
        percentile(&times, 0.9).as_secs_f64() * 1e3,
        times.len()
    );
    median
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let client = Client {
        http: reqwest::Client::new(),
        url: args.url.trim_end_matches('/').to_owned(),
    };
    let origin = Url::parse(&args.origin).expect("--origin is a URL");
    let name = format!("pk{}", std::process::id());
    let email = format!("{name}@example.com");
    let (status, _) = client
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": name, "email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "register");
    let login = json!({"email": email, "password": PASSWORD});
    let (_, body) = client.post("/api/v1/auth/login", None, login.clone()).await;
    let token = body["access_token"].as_str().expect("a token").to_owned();

    // One passkey (the soft token keeps no user handle: named sign-ins).
    let mut device = SoftPasskey::new(true);
    let (_, begun) = client
        .post(
            "/api/v1/auth/passkeys/register/begin",
            Some(&token),
            json!({}),
        )
        .await;
    let mut options: CreationChallengeResponse =
        serde_json::from_value(begun["options"].clone()).expect("creation options");
    if let Some(sel) = options.public_key.authenticator_selection.as_mut() {
        sel.require_resident_key = false;
    }
    let made = device
        .do_registration(origin.clone(), options)
        .expect("the soft token registers");
    let body = json!({"ceremony": begun["ceremony"], "credential": made});
    let (status, _) = client
        .post("/api/v1/auth/passkeys/register/finish", Some(&token), body)
        .await;
    assert_eq!(status, 201, "passkey registration");

    let mut password = Vec::with_capacity(args.rounds);
    let mut passkey = Vec::with_capacity(args.rounds);
    for _ in 0..args.rounds {
        let started = Instant::now();
        let (status, _) = client.post("/api/v1/auth/login", None, login.clone()).await;
        password.push(started.elapsed());
        assert_eq!(status, 200, "password login");

        let started = Instant::now();
        let (_, begun) = client
            .post(
                "/api/v1/auth/passkeys/login/begin",
                None,
                json!({"email": email}),
            )
            .await;
        let begin = started.elapsed();
        let options: RequestChallengeResponse =
            serde_json::from_value(begun["options"].clone()).expect("request options");
        let signed = device
            .do_authentication(origin.clone(), options)
            .expect("the soft token signs");
        let body = json!({"ceremony": begun["ceremony"], "credential": signed});
        let started = Instant::now();
        let (status, _) = client
            .post("/api/v1/auth/passkeys/login/finish", None, body)
            .await;
        passkey.push(begin + started.elapsed());
        assert_eq!(status, 200, "passkey sign-in");
    }
    let p = report("password", password);
    let k = report("passkey", passkey);
    println!(
        "passkey / password median: {:.3}",
        k.as_secs_f64() / p.as_secs_f64()
    );
}
