use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef-test";
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

fn production_ok() -> Vec<(&'static str, String)> {
    vec![
        ("ENVIRONMENT", "production".into()),
        ("JWT_SECRET_KEY", SECRET.into()),
        ("DATA_ENCRYPTION_KEYS", format!("k1:{KEY_B64}")),
        ("BLIND_INDEX_KEY", KEY_B64.into()),
        ("CORS_ORIGINS", "https://app.example.com".into()),
    ]
}

fn problem_vars(err: &ConfigError) -> Vec<&'static str> {
    err.problems.iter().map(|p| p.var).collect()
}

#[test]
fn defaults_match_the_contract() {
    let c = load(&[]).unwrap();
    assert_eq!(c.environment, Environment::Development);
    assert_eq!(c.bind_addr.to_string(), "127.0.0.1:8000");
    assert_eq!(c.jwt.access_ttl, Duration::from_secs(15 * 60));
    assert_eq!(c.jwt.refresh_ttl, Duration::from_secs(7 * 86_400));
    assert!(c.jwt.secret_generated, "development makes a secret");
    assert!(c.jwt.secret.expose_secret().len() >= MIN_JWT_SECRET_BYTES);
    assert_eq!(
        (
            c.argon2.memory_kib,
            c.argon2.time_cost,
            c.argon2.parallelism
        ),
        (65_536, 3, 4)
    );
    assert_eq!(c.rate_limit.global_per_minute, 60);
    assert_eq!(c.rate_limit.login.to_string(), "5/minute");
    assert_eq!(c.rate_limit.register.to_string(), "3/minute");
    assert_eq!(c.rate_limit.refresh.to_string(), "10/minute");
    assert_eq!(c.rate_limit.api_key_per_minute, 600);
    assert_eq!(c.max_body_bytes, 1024 * 1024);
    assert_eq!(c.max_upload_bytes, 10 * 1024 * 1024);
    assert_eq!(c.cors.origins, vec!["http://localhost:3000"]);
    assert_eq!(
        c.cors.allow_methods,
        vec!["GET", "POST", "PUT", "PATCH", "DELETE"]
    );
    assert_eq!(c.metrics_addr.to_string(), "127.0.0.1:9090");
    assert!(c.database.url.expose_secret().ends_with("gatehouse.db"));
    assert!(c.expose_validation_details && c.docs_enabled && c.secure_cookies);
}

#[test]
fn every_bad_value_is_reported_by_name() {
    let err = load(&[
        ("ARGON2_TIME_COST", "zero"),
        ("BIND_ADDR", "nowhere"),
        ("RATE_LIMIT_LOGIN", "5 per minute"),
        ("SECURE_COOKIES", "maybe"),
        ("LOG_FORMAT", "xml"),
        ("DATABASE_URL", "mysql://x"),
        ("TRUSTED_PROXIES", "10.0.0.0/8, nope"),
        ("ALLOWED_HOSTS", "bad host"),
    ])
    .unwrap_err();
    let vars = problem_vars(&err);
    for v in [
        "ARGON2_TIME_COST",
        "BIND_ADDR",
        "RATE_LIMIT_LOGIN",
        "SECURE_COOKIES",
        "LOG_FORMAT",
        "DATABASE_URL",
        "TRUSTED_PROXIES",
        "ALLOWED_HOSTS",
    ] {
        assert!(vars.contains(&v), "{v} missing from {vars:?}");
    }
    // One line per problem, each naming its variable.
    let text = err.to_string();
    assert_eq!(text.lines().count(), err.problems.len());
    for line in text.lines() {
        assert!(line.starts_with("invalid configuration: "));
    }
}

#[test]
fn short_jwt_secret_is_refused_without_echoing_it() {
    let err = load(&[("JWT_SECRET_KEY", "short-secret-value")]).unwrap_err();
    assert_eq!(problem_vars(&err), vec!["JWT_SECRET_KEY"]);
    assert!(!err.to_string().contains("short-secret-value"));
}

#[test]
fn production_accepts_a_complete_configuration() {
    let c = Config::from_vars(production_ok()).unwrap();
    assert!(c.is_production());
    assert!(
        !c.expose_validation_details,
        "production default hides details"
    );
    assert!(!c.docs_enabled, "production default hides docs");
    assert_eq!(c.data_keys.as_ref().unwrap().primary().kid, "k1");
}

#[test]
fn production_refusals() {
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        ("JWT_SECRET_KEY", None, "JWT_SECRET_KEY"),
        ("JWT_SECRET_KEY", Some("too-short"), "JWT_SECRET_KEY"),
        ("CORS_ORIGINS", Some("*"), "CORS_ORIGINS"),
        ("SECURE_COOKIES", Some("false"), "SECURE_COOKIES"),
        ("DATA_ENCRYPTION_KEYS", None, "DATA_ENCRYPTION_KEYS"),
        ("BLIND_INDEX_KEY", None, "BLIND_INDEX_KEY"),
    ];
    for (var, value, expected) in cases {
        let mut vars: Vec<(&str, String)> = production_ok()
            .into_iter()
            .filter(|(k, _)| *k != var)
            .collect();
        if let Some(v) = value {
            vars.push((var, v.to_owned()));
        }
        let err = Config::from_vars(vars).unwrap_err();
        assert!(
            problem_vars(&err).contains(&expected),
            "{var}={value:?} should be refused, got {err}"
        );
    }
}

#[test]
fn wildcard_origin_with_credentials_is_refused_everywhere() {
    let err = load(&[("CORS_ORIGINS", "*")]).unwrap_err();
    assert_eq!(problem_vars(&err), vec!["CORS_ORIGINS"]);
    let ok = load(&[("CORS_ORIGINS", "*"), ("CORS_ALLOW_CREDENTIALS", "false")]).unwrap();
    assert_eq!(ok.cors.origins, vec!["*"]);
}

#[test]
fn origins_must_be_origins() {
    let err = load(&[(
        "CORS_ORIGINS",
        "https://ok.example, https://bad.example/path",
    )])
    .unwrap_err();
    assert_eq!(problem_vars(&err), vec!["CORS_ORIGINS"]);
}

#[test]
fn data_keys_parse_and_fail_clearly() {
    let c = load(&[(
        "DATA_ENCRYPTION_KEYS",
        &format!("new:{KEY_B64}, old:{KEY_B64}"),
    )])
    .unwrap();
    let keys = c.data_keys.unwrap();
    assert_eq!(keys.primary().kid, "new");
    assert!(keys.get("old").is_some());
    for bad in [
        "nokid".to_owned(),
        format!("a:{KEY_B64},a:{KEY_B64}"),
        "a:dG9vIHNob3J0".to_owned(),
        "a:!!!".to_owned(),
    ] {
        let err = load(&[("DATA_ENCRYPTION_KEYS", &bad)]).unwrap_err();
        assert_eq!(problem_vars(&err), vec!["DATA_ENCRYPTION_KEYS"], "{bad}");
        assert!(!err.to_string().contains(KEY_B64));
    }
}

#[test]
fn debug_output_redacts_secrets() {
    let c = Config::from_vars(production_ok()).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains(SECRET));
    assert!(!debug.contains(KEY_B64));
}

#[test]
fn redacted_view_hides_secrets_and_names_every_known_var() {
    let mut vars = production_ok();
    vars.push(("DATABASE_URL", "postgres://app:pw-in-url@db/gh".into()));
    vars.push(("REDIS_URL", "redis://:redispw@cache:6379".into()));
    vars.push(("SMTP_URL", "smtp://mailer:smtppw@mail:587".into()));
    let c = Config::from_vars(vars).unwrap();
    let view = c.redacted_view();
    let text = view.to_string();
    for secret in [SECRET, KEY_B64, "pw-in-url", "redispw", "smtppw"] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
    for var in KNOWN_VARS {
        assert!(view.get(*var).is_some(), "{var} missing from the view");
    }
}

#[test]
fn tls_needs_both_files() {
    let err = load(&[("TLS_CERT_FILE", "/tmp/cert.pem")]).unwrap_err();
    assert_eq!(problem_vars(&err), vec!["TLS_KEY_FILE"]);
}

#[test]
fn eddsa_needs_a_key_file() {
    let err = load(&[("JWT_ALGORITHM", "EdDSA")]).unwrap_err();
    assert_eq!(problem_vars(&err), vec!["JWT_PRIVATE_KEY_FILE"]);
}

#[test]
fn unknown_vars_that_look_like_ours_are_reported() {
    let unknown = unknown_vars(["JWT_SECRET", "JWT_SECRET_KEY", "PATH", "RATE_LIMIT_LOGINS"]);
    assert_eq!(unknown, vec!["JWT_SECRET", "RATE_LIMIT_LOGINS"]);
}

#[test]
fn the_trace_exporter_needs_an_http_collector_url() {
    let c = load(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]).unwrap();
    assert_eq!(c.otel_endpoint.as_deref(), Some("http://127.0.0.1:4318"));
    assert_eq!(load(&[]).unwrap().otel_endpoint, None);
    for bad in [
        "https://collector:4318",
        "collector:4318",
        "http://",
        "grpc://x",
    ] {
        let err = load(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)]).unwrap_err();
        assert_eq!(problem_vars(&err), ["OTEL_EXPORTER_OTLP_ENDPOINT"], "{bad}");
    }
}
