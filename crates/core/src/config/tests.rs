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
        ("AUDIT_CHAIN_KEY", KEY_B64.into()),
        ("CORS_ORIGINS", "https://app.example.com".into()),
        ("SMTP_URL", "smtps://mail.example.com:465".into()),
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
    assert_eq!(c.environment, Environment::Development);
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
    assert_eq!(c.rate_limit.ipv6_prefix, 64);
    assert_eq!(c.max_upload_bytes, 10 * 1024 * 1024);
    assert_eq!(c.upload_quota_bytes, 104_857_600);
    assert_eq!(c.upload_quota_files, 1000);
    assert_eq!(c.upload_min_free_bytes, 268_435_456);
}

#[test]
fn the_audit_chain_key_is_required_in_production_and_never_shown() {
    let without: Vec<_> = production_ok()
        .into_iter()
        .filter(|(k, _)| *k != "AUDIT_CHAIN_KEY")
        .collect();
    let err = Config::from_vars(without).unwrap_err();
    assert_eq!(problem_vars(&err), vec!["AUDIT_CHAIN_KEY"]);
    let err = load(&[("AUDIT_CHAIN_KEY", "dG9vIHNob3J0")]).unwrap_err();
    assert_eq!(problem_vars(&err), vec!["AUDIT_CHAIN_KEY"]);
    let c = Config::from_vars(production_ok()).unwrap();
    assert_eq!(c.redacted_view()["AUDIT_CHAIN_KEY"], "[redacted]");
}

#[test]
fn ipv6_prefix_is_bounded() {
    for bad in ["16", "129", "x"] {
        let err = load(&[("RATE_LIMIT_IPV6_PREFIX", bad)]).unwrap_err();
        assert_eq!(problem_vars(&err), vec!["RATE_LIMIT_IPV6_PREFIX"], "{bad}");
    }
    let c = load(&[("RATE_LIMIT_IPV6_PREFIX", "56")]).unwrap();
    assert_eq!(c.rate_limit.ipv6_prefix, 56);
}

#[test]
fn short_jwt_secret_is_refused_without_echoing_it() {
    let err = load(&[("JWT_SECRET_KEY", "short-secret-value")]).unwrap_err();
    assert_eq!(problem_vars(&err), vec!["JWT_SECRET_KEY"]);
    assert!(!err.to_string().contains("short-secret-value"));
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
fn eddsa_needs_a_key_file() {
    let err = load(&[("JWT_ALGORITHM", "EdDSA")]).unwrap_err();
    assert_eq!(problem_vars(&err), vec!["JWT_PRIVATE_KEY_FILE"]);
}

#[test]
fn the_view_shows_every_variable_of_the_group() {
    let view = load(&[]).unwrap().redacted_view();
    let mut names = Config::names();
    names.sort_unstable();
    let shown: Vec<&str> = view
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(shown, names);
    assert_eq!(view["JWT_SECRET_KEY"], "[generated for this process]");
    assert_eq!(view["AUDIT_RETENTION_DAYS"], 365);
    assert_eq!(view["ACCESS_TOKEN_EXPIRE_MINUTES"], 15);
}

#[test]
fn the_documentation_comes_from_the_table() {
    let docs = Config::documented();
    let doc = |name: &str| docs.iter().find(|v| v.name == name).unwrap().clone();
    assert_eq!(doc("ARGON2_MEMORY_COST").default, "`65536`");
    assert_eq!(doc("ARGON2_MAX_CONCURRENT").default, "number of cores");
    assert_eq!(doc("SMTP_URL").default, NO_DEFAULT);
    assert_eq!(doc("JWT_ISSUER").meaning, "`iss` claim");
    let table = markdown_table(&[doc("RATE_LIMIT_LOGIN")]);
    assert!(table.contains(r"`N/second\|minute\|hour\|day`"), "{table}");
}

#[test]
fn mail_settings_are_checked() {
    let c = load(&[("APP_BASE_URL", "https://id.example.com/ui/")]).unwrap();
    assert_eq!(c.mail.app_base_url, "https://id.example.com/ui");
    assert_eq!(c.mail.smtp_timeout, Duration::from_secs(15));
    let err = load(&[("APP_BASE_URL", "ftp://x"), ("SMTP_URL", "http://x")]).unwrap_err();
    assert_eq!(problem_vars(&err), ["SMTP_URL", "APP_BASE_URL"]);
    assert!(load(&[("SMTP_URL", "smtp+starttls://u:p@mail.example.com:587")]).is_ok());
    // The log mailer is for development: production needs a server.
    let mut vars = production_ok();
    vars.retain(|(k, _)| *k != "SMTP_URL");
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(problem_vars(&load(&pairs).unwrap_err()), ["SMTP_URL"]);
}

#[test]
fn passkey_relying_party_and_origins_are_checked() {
    let c = load(&[]).unwrap();
    assert_eq!(c.webauthn.rp_id, "localhost");
    let ok = load(&[
        ("WEBAUTHN_RP_ID", "Example.com"),
        (
            "WEBAUTHN_ORIGINS",
            "https://example.com,https://id.example.com:8443",
        ),
    ])
    .unwrap();
    assert_eq!(ok.webauthn.rp_id, "example.com");
    for (rp, origins) in [
        ("example.com", "https://example.org"),
        ("example.com", "https://notexample.com"),
        ("example.com", "http://example.com"),
        ("example.com", "https://example.com/path"),
        ("example.com", "example.com"),
        ("example.com", ""),
    ] {
        let err = load(&[("WEBAUTHN_RP_ID", rp), ("WEBAUTHN_ORIGINS", origins)]).unwrap_err();
        let vars = problem_vars(&err);
        assert!(!vars.is_empty(), "{origins}");
        assert!(
            vars.iter().all(|v| *v == "WEBAUTHN_ORIGINS"),
            "{origins}: {vars:?}"
        );
    }
    let err = load(&[("WEBAUTHN_RP_ID", "https://example.com")]).unwrap_err();
    assert_eq!(problem_vars(&err), ["WEBAUTHN_RP_ID"]);
    // Production: http is refused even for localhost.
    let mut vars = production_ok();
    vars.retain(|(k, _)| !k.starts_with("WEBAUTHN_"));
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        problem_vars(&load(&pairs).unwrap_err()),
        ["WEBAUTHN_ORIGINS", "WEBAUTHN_ORIGINS"]
    );
}

#[test]
fn an_authenticator_allow_list_needs_both_roots_and_models() {
    let aaguid = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
    let c = load(&[
        (
            "WEBAUTHN_ATTESTATION_CA_FILE",
            "/etc/gatehouse/fido-roots.pem",
        ),
        ("WEBAUTHN_ALLOWED_AAGUIDS", &format!("{aaguid}, {aaguid}")),
    ])
    .unwrap();
    assert_eq!(c.webauthn.allowed_aaguids.len(), 2);
    assert!(load(&[]).unwrap().webauthn.attestation_ca_file.is_none());
    // A model without the vendor roots is only the authenticator's claim;
    // roots without models would admit every model they sign.
    let err = load(&[("WEBAUTHN_ALLOWED_AAGUIDS", aaguid)]).unwrap_err();
    assert_eq!(problem_vars(&err), ["WEBAUTHN_ATTESTATION_CA_FILE"]);
    let err = load(&[("WEBAUTHN_ATTESTATION_CA_FILE", "/etc/roots.pem")]).unwrap_err();
    assert_eq!(problem_vars(&err), ["WEBAUTHN_ALLOWED_AAGUIDS"]);
    let err = load(&[
        ("WEBAUTHN_ATTESTATION_CA_FILE", "/etc/roots.pem"),
        ("WEBAUTHN_ALLOWED_AAGUIDS", "yubikey-5"),
    ])
    .unwrap_err();
    assert!(problem_vars(&err).contains(&"WEBAUTHN_ALLOWED_AAGUIDS"));
}
