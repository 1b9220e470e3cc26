use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use secrecy::SecretString;
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2026-01-01 12:00 UTC);
const TTL: Duration = Duration::from_secs(900);

fn hs_config(secret: &str) -> JwtConfig {
    JwtConfig {
        algorithm: JwtAlgorithm::Hs256,
        secret: SecretString::from(secret.to_owned()),
        secret_generated: false,
        previous_secrets: Vec::new(),
        private_key_file: None,
        retired_public_key_files: Vec::new(),
        issuer: "gatehouse".into(),
        audience: "gatehouse".into(),
        access_ttl: TTL,
        refresh_ttl: Duration::from_secs(86_400),
    }
}

const SECRET_A: &str = "secret-a-0123456789-0123456789-0123456789";
const SECRET_B: &str = "secret-b-0123456789-0123456789-0123456789";

fn issue(keys: &TokenKeys, token_type: TokenType) -> String {
    let grant = Grant {
        token_type,
        user_id: Uuid::now_v7(),
        role: Role::User,
        auth_version: 0,
        session_id: None,
        auth_time: None,
        ttl: TTL,
    };
    keys.issue(&grant, NOW).unwrap().token
}

/// Re-encodes a token's payload after `edit`, keeping header and signature.
fn tamper(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    edit(&mut payload);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

#[test]
fn round_trip_carries_every_claim_and_kid() {
    let keys = TokenKeys::from_config(&hs_config(SECRET_A)).unwrap();
    let user = Uuid::now_v7();
    let sid = Uuid::now_v7();
    let issued = keys
        .issue(
            &Grant {
                token_type: TokenType::Access,
                user_id: user,
                role: Role::Moderator,
                auth_version: 3,
                session_id: Some(sid),
                auth_time: Some(NOW - Duration::from_secs(120)),
                ttl: TTL,
            },
            NOW,
        )
        .unwrap();
    let header = jsonwebtoken::decode_header(&issued.token).unwrap();
    assert!(header.kid.unwrap().starts_with("hs256-"));
    let claims = keys.verify(&issued.token, TokenType::Access, NOW).unwrap();
    assert_eq!(claims.sub, user.to_string());
    assert_eq!(claims.role, Role::Moderator);
    assert_eq!(claims.iat, NOW.unix_timestamp());
    assert_eq!(claims.exp, NOW.unix_timestamp() + 900);
    assert_eq!(claims.jti, issued.jti);
    assert_eq!(
        (claims.iss.as_str(), claims.aud.as_str()),
        ("gatehouse", "gatehouse")
    );
    assert_eq!(claims.ver, 3);
    assert_eq!(claims.sid, Some(sid.to_string()));
    assert_eq!(claims.auth_time, Some(NOW.unix_timestamp() - 120));
}

#[test]
fn forged_tokens_are_refused() {
    let keys = TokenKeys::from_config(&hs_config(SECRET_A)).unwrap();
    let other = TokenKeys::from_config(&hs_config(SECRET_B)).unwrap();
    let good = issue(&keys, TokenType::Access);

    // alg "none", unsigned.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = good.split('.').nth(1).unwrap();
    let none = format!("{none_header}.{payload}.");
    assert!(keys.verify(&none, TokenType::Access, NOW).is_err());

    // Signed with another secret (its kid is unknown here).
    let wrong_key = issue(&other, TokenType::Access);
    assert_eq!(
        keys.verify(&wrong_key, TokenType::Access, NOW),
        Err(TokenError::UnknownKey)
    );

    // Another secret under our kid: the signature fails.
    let header = good.split('.').next().unwrap();
    let parts: Vec<&str> = wrong_key.split('.').collect();
    let spliced = format!("{header}.{}.{}", parts[1], parts[2]);
    assert_eq!(
        keys.verify(&spliced, TokenType::Access, NOW),
        Err(TokenError::Invalid)
    );

    // Tampered payload: role escalation.
    let escalated = tamper(&good, |p| p["role"] = json!("admin"));
    assert_eq!(
        keys.verify(&escalated, TokenType::Access, NOW),
        Err(TokenError::Invalid)
    );

    // Another type used as access.
    let mfa = issue(&keys, TokenType::Mfa);
    assert_eq!(
        keys.verify(&mfa, TokenType::Access, NOW),
        Err(TokenError::WrongType)
    );

    // Garbage.
    for junk in ["", "a.b.c", "not-a-jwt", "....."] {
        assert!(keys.verify(junk, TokenType::Access, NOW).is_err(), "{junk}");
    }
}

#[test]
fn expiry_follows_the_given_clock() {
    let keys = TokenKeys::from_config(&hs_config(SECRET_A)).unwrap();
    let token = issue(&keys, TokenType::Access);
    let just_before = NOW + time::Duration::seconds(899);
    let at_expiry = NOW + time::Duration::seconds(900);
    assert!(keys.verify(&token, TokenType::Access, just_before).is_ok());
    assert_eq!(
        keys.verify(&token, TokenType::Access, at_expiry),
        Err(TokenError::Expired)
    );
    // Issued in the future beyond clock skew.
    let early = NOW - time::Duration::seconds(120);
    assert_eq!(
        keys.verify(&token, TokenType::Access, early),
        Err(TokenError::Invalid)
    );
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let keys = TokenKeys::from_config(&hs_config(SECRET_A)).unwrap();
    for (iss, aud) in [("elsewhere", "gatehouse"), ("gatehouse", "another-api")] {
        let mut cfg = hs_config(SECRET_A);
        cfg.issuer = iss.into();
        cfg.audience = aud.into();
        let foreign = TokenKeys::from_config(&cfg).unwrap();
        let token = issue(&foreign, TokenType::Access);
        assert_eq!(
            keys.verify(&token, TokenType::Access, NOW),
            Err(TokenError::Invalid)
        );
    }
}

#[test]
fn rotated_secrets_still_verify_old_tokens() {
    let old = TokenKeys::from_config(&hs_config(SECRET_A)).unwrap();
    let token = issue(&old, TokenType::Access);
    let mut cfg = hs_config(SECRET_B);
    cfg.previous_secrets = vec![SecretString::from(SECRET_A.to_owned())];
    let rotated = TokenKeys::from_config(&cfg).unwrap();
    assert!(rotated.verify(&token, TokenType::Access, NOW).is_ok());
    let fresh = issue(&rotated, TokenType::Access);
    assert_ne!(
        jsonwebtoken::decode_header(&fresh).unwrap().kid,
        jsonwebtoken::decode_header(&token).unwrap().kid
    );
    assert_eq!(
        rotated.jwks()["keys"],
        json!([]),
        "HS256 keys are never published"
    );
}

#[test]
fn eddsa_signs_publishes_jwks_and_keeps_retired_keys() {
    let dir = tempfile::tempdir().unwrap();
    let write_private = |name: &str, seed: u8| {
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let path = dir.path().join(name);
        std::fs::write(&path, key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
        (path, key)
    };
    let (old_path, old_key) = write_private("old.pem", 1);
    let (new_path, _) = write_private("new.pem", 2);
    let old_public = dir.path().join("old.pub.pem");
    std::fs::write(
        &old_public,
        old_key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    )
    .unwrap();

    let mut cfg = hs_config(SECRET_A);
    cfg.algorithm = JwtAlgorithm::EdDsa;
    cfg.private_key_file = Some(old_path);
    let old = TokenKeys::from_config(&cfg).unwrap();
    let old_token = issue(&old, TokenType::Access);

    cfg.private_key_file = Some(new_path);
    cfg.retired_public_key_files = vec![old_public];
    let current = TokenKeys::from_config(&cfg).unwrap();
    assert!(current.verify(&old_token, TokenType::Access, NOW).is_ok());
    let jwks = current.jwks();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for k in keys {
        assert_eq!(k["kty"], "OKP");
        assert_eq!(k["crv"], "Ed25519");
        assert!(k.get("d").is_none(), "no private part");
    }
    let kid = jsonwebtoken::decode_header(&issue(&current, TokenType::Access))
        .unwrap()
        .kid;
    assert_eq!(kid.as_deref(), keys[0]["kid"].as_str());

    // An HS256 token signed with the public key bytes as secret is refused.
    let x = URL_SAFE_NO_PAD
        .decode(keys[0]["x"].as_str().unwrap())
        .unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid;
    let claims = current.verify(&old_token, TokenType::Access, NOW).unwrap();
    let confused = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&x)).unwrap();
    assert_eq!(
        current.verify(&confused, TokenType::Access, NOW),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn a_token_verified_before_gets_every_per_use_check_again() {
    let keys = TokenKeys::from_config(&hs_config(SECRET_A)).unwrap();
    let token = issue(&keys, TokenType::Access);
    let first = keys.verify(&token, TokenType::Access, NOW).unwrap();
    // Second use: same claims, from the verified-token cache.
    assert_eq!(keys.verify(&token, TokenType::Access, NOW).unwrap(), first);
    assert_eq!(
        keys.verify(&token, TokenType::Mfa, NOW),
        Err(TokenError::WrongType)
    );
    assert_eq!(
        keys.verify(&token, TokenType::Access, NOW + time::Duration::hours(1)),
        Err(TokenError::Expired)
    );
    // A look-alike of a cached token is a different token: checked in full.
    let tampered = tamper(&token, |c| c["role"] = json!("admin"));
    assert_eq!(
        keys.verify(&tampered, TokenType::Access, NOW),
        Err(TokenError::Invalid)
    );
    let mut truncated = token.clone();
    truncated.pop();
    assert!(keys.verify(&truncated, TokenType::Access, NOW).is_err());
    assert!(keys.verify(&token, TokenType::Access, NOW).is_ok());
}

/// Signs `header` (raw JSON) over `payload` with `secret`, as HS256.
fn sign_raw(header: &str, payload: &str, secret: &str) -> String {
    let message = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header));
    let key = EncodingKey::from_secret(secret.as_bytes());
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap();
    format!("{message}.{signature}")
}

#[test]
fn a_crit_header_is_refused_and_never_cached() {
    let keys = TokenKeys::from_config(&hs_config(SECRET_A)).unwrap();
    let good = issue(&keys, TokenType::Access);
    let kid = jsonwebtoken::decode_header(&good).unwrap().kid.unwrap();
    let payload = good.split('.').nth(1).unwrap();

    // The same header without `crit`, signed the same way, is accepted.
    let plain = sign_raw(
        &json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string(),
        payload,
        SECRET_A,
    );
    assert!(keys.verify(&plain, TokenType::Access, NOW).is_ok());

    // RFC 7515 §4.1.11: no extension is understood, so any `crit` is refused,
    // whatever it lists and however its name is spelt in JSON.
    let headers = [
        json!({"alg": "HS256", "typ": "JWT", "kid": kid, "crit": ["exp"]}).to_string(),
        json!({"alg": "HS256", "kid": kid, "crit": ["x-ext"], "x-ext": true}).to_string(),
        json!({"alg": "HS256", "kid": kid, "crit": []}).to_string(),
        json!({"alg": "HS256", "kid": kid, "crit": null}).to_string(),
        format!(r#"{{"alg":"HS256","kid":"{kid}","cr\u0069t":["exp"]}}"#),
    ];
    for header in headers {
        let token = sign_raw(&header, payload, SECRET_A);
        for _ in 0..2 {
            assert_eq!(
                keys.verify(&token, TokenType::Access, NOW),
                Err(TokenError::CriticalExtension),
                "{header}"
            );
        }
        assert!(keys.verified.get(token.as_str()).is_none(), "{header}");
    }
}
