use std::collections::BTreeSet;

use secrecy::ExposeSecret;

use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef-test";
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

fn production_ok() -> Vec<(&'static str, String)> {
    vec![
        ("ENVIRONMENT", "production".into()),
        ("JWT_SECRET_KEY", SECRET.into()),
        ("DATA_ENCRYPTION_KEYS", format!("k1:{KEY_B64}")),
        ("BLIND_INDEX_KEY", KEY_B64.into()),
        ("AUDIT_CHAIN_KEY", KEY_B64.into()),
        ("CORS_ORIGINS", "https://app.example.com".into()),
        ("SMTP_URL", "smtps://mail.example.com".into()),
        ("WEBAUTHN_RP_ID", "example.com".into()),
        ("WEBAUTHN_ORIGINS", "https://app.example.com".into()),
    ]
}

fn problem_vars(err: &ConfigError) -> Vec<&'static str> {
    err.problems.iter().map(|p| p.var).collect()
}

#[test]
fn defaults_match_the_contract() {
    let c = load(&[]).unwrap();
    assert_eq!(c.runtime.bind_addr.to_string(), "127.0.0.1:8000");
    assert_eq!(c.http.max_body_bytes, 1024 * 1024);
    assert_eq!(c.http.cors.origins, vec!["http://localhost:3000"]);
    assert_eq!(
        c.http.cors.allow_methods,
        vec!["GET", "POST", "PUT", "PATCH", "DELETE"]
    );
    assert_eq!(c.runtime.metrics_addr.to_string(), "127.0.0.1:9090");
    assert!(
        c.runtime
            .database
            .url
            .expose_secret()
            .ends_with("gatehouse.db")
    );
    assert!(c.http.expose_validation_details && c.http.docs_enabled && c.http.secure_cookies);
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
fn production_accepts_a_complete_configuration() {
    let c = Settings::from_vars(production_ok()).unwrap();
    assert!(c.core.is_production());
    assert!(
        !c.http.expose_validation_details,
        "production default hides details"
    );
    assert!(!c.http.docs_enabled, "production default hides docs");
    assert_eq!(c.core.data_keys.as_ref().unwrap().primary().kid, "k1");
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
        ("AUDIT_CHAIN_KEY", None, "AUDIT_CHAIN_KEY"),
    ];
    for (var, value, expected) in cases {
        let mut vars: Vec<(&str, String)> = production_ok()
            .into_iter()
            .filter(|(k, _)| *k != var)
            .collect();
        if let Some(v) = value {
            vars.push((var, v.to_owned()));
        }
        let err = Settings::from_vars(vars).unwrap_err();
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
    assert_eq!(ok.http.cors.origins, vec!["*"]);
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
fn redacted_view_hides_secrets_and_names_every_known_var() {
    let mut vars = production_ok();
    vars.push(("DATABASE_URL", "postgres://app:pw-in-url@db/gh".into()));
    vars.push(("REDIS_URL", "redis://:redispw@cache:6379".into()));
    vars.push(("SMTP_URL", "smtp://mailer:smtppw@mail:587".into()));
    let c = Settings::from_vars(vars).unwrap();
    let view = c.redacted_view();
    let text = view.to_string();
    for secret in [SECRET, KEY_B64, "pw-in-url", "redispw", "smtppw"] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
    for var in &known_vars() {
        assert!(view.get(*var).is_some(), "{var} missing from the view");
    }
}

#[test]
fn tls_needs_both_files() {
    let err = load(&[("TLS_CERT_FILE", "/tmp/cert.pem")]).unwrap_err();
    assert_eq!(problem_vars(&err), vec!["TLS_KEY_FILE"]);
}

#[test]
fn the_redirect_listener_needs_tls() {
    let err = load(&[("HTTP_REDIRECT_ADDR", "127.0.0.1:8080")]).unwrap_err();
    assert_eq!(problem_vars(&err), vec!["HTTP_REDIRECT_ADDR"]);
    let err = load(&[("HTTP_REDIRECT_ADDR", "not an address")]).unwrap_err();
    assert!(problem_vars(&err).contains(&"HTTP_REDIRECT_ADDR"));
    let c = load(&[
        ("HTTP_REDIRECT_ADDR", "[::]:80"),
        ("TLS_CERT_FILE", "cert.pem"),
        ("TLS_KEY_FILE", "key.pem"),
    ])
    .unwrap();
    assert_eq!(c.runtime.redirect_addr, Some("[::]:80".parse().unwrap()));
}

#[test]
fn the_trace_exporter_needs_an_http_collector_url() {
    let c = load(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]).unwrap();
    assert_eq!(
        c.runtime.otel_endpoint.as_deref(),
        Some("http://127.0.0.1:4318")
    );
    assert_eq!(load(&[]).unwrap().runtime.otel_endpoint, None);
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

#[test]
fn unknown_vars_that_look_like_ours_are_reported() {
    let unknown = unknown_vars(["JWT_SECRET", "JWT_SECRET_KEY", "PATH", "RATE_LIMIT_LOGINS"]);
    assert_eq!(unknown, vec!["JWT_SECRET", "RATE_LIMIT_LOGINS"]);
}

#[test]
fn every_variable_is_declared_once_and_shown() {
    let names = known_vars();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "declared twice: {names:?}");
    let view = load(&[]).unwrap().redacted_view();
    let shown: BTreeSet<&str> = view
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        shown, unique,
        "the view shows exactly the declared variables"
    );
}

/// The README's configuration table, as `(variable, default)` pairs: a row
/// may name several variables (`` `A` / `B` ``) with as many defaults, or one
/// default for all of them.
fn readme_table() -> Vec<(String, String)> {
    let readme = include_str!("../../../../README.md");
    let mut rows = Vec::new();
    for line in readme
        .lines()
        .skip_while(|l| !l.starts_with("| variable | default | meaning |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
    {
        let cells = table_cells(line);
        assert!(cells.len() >= 2, "not a table row: {line}");
        let names: Vec<&str> = cells[0].split(" / ").map(str::trim).collect();
        let defaults: Vec<&str> = cells[1].split(" / ").map(str::trim).collect();
        assert!(
            defaults.len() == names.len() || defaults.len() == 1,
            "{} variables but {} defaults in: {line}",
            names.len(),
            defaults.len()
        );
        for (i, name) in names.iter().enumerate() {
            let default = if defaults.len() == 1 {
                defaults[0]
            } else {
                defaults[i]
            };
            rows.push((name.trim_matches('`').to_owned(), default.to_owned()));
        }
    }
    assert!(!rows.is_empty(), "no configuration table in the README");
    rows
}

/// The cells of a Markdown table row; `\|` is a pipe inside a cell.
fn table_cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let mut cells = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                cells.last_mut().unwrap().push('|');
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    if cells.last().is_some_and(|c| c.trim().is_empty()) {
        cells.pop();
    }
    cells.iter().map(|c| c.trim().to_owned()).collect()
}

#[test]
fn the_readme_table_matches_the_declarations() {
    let readme = readme_table();
    let declared = Settings::documented();
    let expected = docs_table();
    let in_readme: BTreeSet<&str> = readme.iter().map(|(n, _)| n.as_str()).collect();
    let in_code: BTreeSet<&str> = declared.iter().map(|v| v.name).collect();
    assert_eq!(
        in_readme.len(),
        readme.len(),
        "a variable appears twice in the README"
    );
    let missing: Vec<_> = in_code.difference(&in_readme).collect();
    let unknown: Vec<_> = in_readme.difference(&in_code).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "README lacks {missing:?} and documents unknown {unknown:?}; \
         the table should read:\n\n{expected}"
    );
    for (name, default) in readme.iter().filter(|(_, d)| !d.is_empty()) {
        let var = declared.iter().find(|v| v.name == name).unwrap();
        assert_eq!(
            default, &var.default,
            "README default of {name}; the table should read:\n\n{expected}"
        );
    }
}

#[test]
fn table_cells_keep_escaped_pipes() {
    assert_eq!(
        table_cells(r"| `A` / `B` | `1/minute` / — | per route (`N/second\|minute`) |"),
        [
            "`A` / `B`",
            "`1/minute` / —",
            "per route (`N/second|minute`)"
        ]
    );
}

#[test]
fn production_refuses_a_guessable_jwt_secret_and_public_metrics() {
    let with = |extra: &[(&'static str, &str)]| {
        let mut vars = production_ok();
        vars.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        load(&pairs)
    };
    assert!(with(&[]).is_ok(), "the fixture itself is acceptable");
    for weak in [
        "x".repeat(48),
        "supersecretkeyforjwtsupersecretkey1".to_owned(),
    ] {
        let err = with(&[("JWT_SECRET_KEY", weak.as_str())]).unwrap_err();
        assert_eq!(problem_vars(&err), ["JWT_SECRET_KEY"]);
        assert!(!err.to_string().contains(&weak), "the secret is not echoed");
    }
    let err = with(&[("METRICS_ADDR", "0.0.0.0:9090")]).unwrap_err();
    assert_eq!(problem_vars(&err), ["METRICS_ADDR"]);
    assert!(with(&[("METRICS_ADDR", "0.0.0.0:9090"), ("METRICS_PUBLIC", "true")]).is_ok());
    // Development accepts both (a warning-free local setup).
    assert!(
        load(&[
            ("JWT_SECRET_KEY", "x".repeat(48).as_str()),
            ("METRICS_ADDR", "0.0.0.0:9090")
        ])
        .is_ok()
    );
}
