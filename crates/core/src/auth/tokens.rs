//! Access tokens: JWTs with `sub, role, type, iat, exp, jti, iss, aud` (plus
//! `ver`, the user's credential version, `sid`, the login session, and
//! `auth_time`, when the user last proved a factor), a
//! `kid` header, and verification pinned to one algorithm and known keys
//! (RFC 8725 §3.1, §3.10); a header with `crit` is refused (RFC 7515
//! §4.1.11). Time comes from the caller's clock.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::CoreError;
use crate::config::{JwtAlgorithm, JwtConfig};
use crate::rbac::Role;

/// Accepted difference between our clock and the issuer's for `iat`.
const CLOCK_SKEW_SECS: i64 = 60;

/// Tokens whose signature and claims were checked, kept for reuse: a client
/// sends the same access token with every request for its whole lifetime,
/// and checking a signature costs more than all the rest of a cheap read.
const VERIFIED_CAPACITY: u64 = 20_000;
/// How long a verified token is kept at most (it is re-verified after).
const VERIFIED_TTL: Duration = Duration::from_secs(5 * 60);

/// The `type` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    /// Short-lived proof of a correct password, awaiting the second factor.
    Mfa,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(rename = "type")]
    pub token_type: TokenType,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub iss: String,
    pub aud: String,
    /// The user's credential version when issued.
    pub ver: i64,
    /// The login session (refresh-token family) this token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// When the user last proved a factor (Unix seconds; OpenID Connect
    /// Core §2). Absent from tokens issued before it existed: stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

/// Why a token was refused. All become the same 401 for clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token or bad signature")]
    Invalid,
    #[error("unexpected algorithm or unknown key id")]
    UnknownKey,
    #[error("token of another type")]
    WrongType,
    #[error("token expired")]
    Expired,
    #[error("header names a critical extension")]
    CriticalExtension,
}

/// A freshly signed token.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub jti: String,
    pub expires_at: OffsetDateTime,
}

/// What a token is issued for: its type, subject and lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub token_type: TokenType,
    pub user_id: Uuid,
    pub role: Role,
    /// The user's credential version (`ver`).
    pub auth_version: i64,
    /// The login (`sid`); none for the short-lived MFA token.
    pub session_id: Option<Uuid>,
    /// When the user last proved a factor (`auth_time`); none for the MFA
    /// token.
    pub auth_time: Option<OffsetDateTime>,
    pub ttl: Duration,
}

/// Signing key, verification keys (current and retired) and claim rules.
pub struct TokenKeys {
    algorithm: Algorithm,
    signing_kid: String,
    encoding: EncodingKey,
    verifying: Vec<(String, DecodingKey)>,
    /// Public JWKs (EdDSA only; symmetric keys are never published).
    public_jwks: JwkSet,
    issuer: String,
    audience: String,
    /// Built once: it runs on every authenticated request.
    validation: Validation,
    /// Token → its claims, for tokens that passed the signature and claim
    /// checks (a `crit` header never does). Only tokens signed by our keys
    /// get in, so forged tokens cannot fill it; the type and time checks
    /// still run on every use.
    verified: moka::sync::Cache<Box<str>, Arc<Claims>>,
}

/// The claim rules: the pinned algorithm, `iss`, `aud`, the required claims.
fn validation(algorithm: Algorithm, issuer: &str, audience: &str) -> Validation {
    let mut validation = Validation::new(algorithm);
    // Expiry is checked in `verify` against the injected clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeys")
            .field("algorithm", &self.algorithm)
            .field("signing_kid", &self.signing_kid)
            .field(
                "verifying_kids",
                &self.verifying.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Loads keys as configured (reads the EdDSA key files).
    pub fn from_config(jwt: &JwtConfig) -> Result<Self, CoreError> {
        let (algorithm, signing_kid, encoding, mut verifying, mut public_jwks) = match jwt.algorithm
        {
            JwtAlgorithm::Hs256 => {
                let secret = jwt.secret.expose_secret().as_bytes();
                if secret.is_empty() {
                    return Err(CoreError::internal("JWT_SECRET_KEY is empty"));
                }
                let kid = hs256_kid(secret);
                (
                    Algorithm::HS256,
                    kid.clone(),
                    EncodingKey::from_secret(secret),
                    vec![(kid, DecodingKey::from_secret(secret))],
                    JwkSet::default(),
                )
            }
            JwtAlgorithm::EdDsa => {
                let path = jwt
                    .private_key_file
                    .as_deref()
                    .ok_or_else(|| CoreError::internal("JWT_PRIVATE_KEY_FILE is not set"))?;
                let pem = read_pem(path, "JWT_PRIVATE_KEY_FILE")?;
                let signing = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).map_err(|_| {
                    CoreError::internal("JWT_PRIVATE_KEY_FILE is not a PKCS#8 Ed25519 private key")
                })?;
                let encoding = EncodingKey::from_ed_pem(pem.as_bytes()).map_err(|_| {
                    CoreError::internal("JWT_PRIVATE_KEY_FILE is not a PKCS#8 Ed25519 private key")
                })?;
                let (kid, jwk, decoding) = ed25519_public(&signing.verifying_key().to_bytes())?;
                (
                    Algorithm::EdDSA,
                    kid.clone(),
                    encoding,
                    vec![(kid, decoding)],
                    JwkSet { keys: vec![jwk] },
                )
            }
        };
        match jwt.algorithm {
            JwtAlgorithm::Hs256 => {
                for old in &jwt.previous_secrets {
                    let secret = old.expose_secret().as_bytes();
                    verifying.push((hs256_kid(secret), DecodingKey::from_secret(secret)));
                }
            }
            JwtAlgorithm::EdDsa => {
                for path in &jwt.retired_public_key_files {
                    let pem = read_pem(path, "JWT_RETIRED_PUBLIC_KEY_FILES")?;
                    let key =
                        ed25519_dalek::VerifyingKey::from_public_key_pem(&pem).map_err(|_| {
                            CoreError::internal(format!(
                                "JWT_RETIRED_PUBLIC_KEY_FILES: {} is not an Ed25519 public key",
                                path.display()
                            ))
                        })?;
                    let (kid, jwk, decoding) = ed25519_public(&key.to_bytes())?;
                    verifying.push((kid, decoding));
                    public_jwks.keys.push(jwk);
                }
            }
        }
        Ok(Self {
            validation: validation(algorithm, &jwt.issuer, &jwt.audience),
            algorithm,
            signing_kid,
            encoding,
            verifying,
            public_jwks,
            issuer: jwt.issuer.clone(),
            audience: jwt.audience.clone(),
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .time_to_live(VERIFIED_TTL)
                .build(),
        })
    }

    /// Signs a token of `token_type` for `user_id`, valid for `ttl` from `now`.
    #[allow(clippy::too_many_arguments, reason = "each claim is a separate input")]
    pub fn issue(&self, grant: &Grant, now: OffsetDateTime) -> Result<Issued, CoreError> {
        let iat = now.unix_timestamp();
        let exp = iat + i64::try_from(grant.ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let jti = Uuid::now_v7().to_string();
        let claims = Claims {
            sub: grant.user_id.to_string(),
            role: grant.role,
            token_type: grant.token_type,
            iat,
            exp,
            jti: jti.clone(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            ver: grant.auth_version,
            sid: grant.session_id.map(|s| s.to_string()),
            auth_time: grant.auth_time.map(OffsetDateTime::unix_timestamp),
        };
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.signing_kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| CoreError::internal(format!("signing a token: {e}")))?;
        let expires_at = OffsetDateTime::from_unix_timestamp(exp)
            .map_err(|e| CoreError::internal(e.to_string()))?;
        Ok(Issued {
            token,
            jti,
            expires_at,
        })
    }

    /// Verifies signature, algorithm, key id, `iss`, `aud`, `type` and
    /// expiry against `now`.
    pub fn verify(
        &self,
        token: &str,
        expected: TokenType,
        now: OffsetDateTime,
    ) -> Result<Arc<Claims>, TokenError> {
        let claims = match self.verified.get(token) {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.verify_signed(token)?);
                self.verified.insert(token.into(), claims.clone());
                claims
            }
        };
        if claims.token_type != expected {
            return Err(TokenError::WrongType);
        }
        let now = now.unix_timestamp();
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        if claims.iat > now + CLOCK_SKEW_SECS {
            return Err(TokenError::Invalid);
        }
        Ok(claims)
    }

    /// The checks that depend on the token alone: no `crit`, algorithm, key
    /// id, signature, `iss`, `aud` and the required claims.
    fn verify_signed(&self, token: &str) -> Result<Claims, TokenError> {
        refuse_critical(token)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        // The algorithm is pinned: a token naming another (`none`, or HS256
        // with a public key as secret) is refused before any verification.
        if header.alg != self.algorithm {
            return Err(TokenError::UnknownKey);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self
            .verifying
            .iter()
            .find(|(k, _)| *k == kid)
            .map(|(_, key)| key)
            .ok_or(TokenError::UnknownKey)?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)
    }

    /// The JWK Set of public verification keys (RFC 7517).
    pub fn jwk_set(&self) -> &JwkSet {
        &self.public_jwks
    }

    /// [`Self::jwk_set`] as a JSON value.
    pub fn jwks(&self) -> Value {
        json!(self.public_jwks)
    }
}

/// One public verification key (RFC 8037 OKP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub x: String,
    pub kid: String,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub usage: &'static str,
}

/// A JSON Web Key Set (RFC 7517 §5); empty with HS256.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Jwks))]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// RFC 7515 §4.1.11: `crit` lists extensions a recipient must understand or
/// refuse the token; we understand none. `jsonwebtoken`'s `Header` drops
/// unknown members, so the header JSON is read here, escapes decoded.
fn refuse_critical(token: &str) -> Result<(), TokenError> {
    let mut segments = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(TokenError::Invalid);
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Invalid)?;
    let members: serde_json::Map<String, Value> =
        serde_json::from_slice(&json).map_err(|_| TokenError::Invalid)?;
    if members.contains_key("crit") {
        return Err(TokenError::CriticalExtension);
    }
    Ok(())
}

fn read_pem(path: &Path, var: &str) -> Result<String, CoreError> {
    std::fs::read_to_string(path)
        .map_err(|e| CoreError::internal(format!("{var}: cannot read {}: {e}", path.display())))
}

/// Key id of an HS256 secret: a digest prefix, which names the key without
/// revealing it.
fn hs256_kid(secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"gatehouse-hs256-kid:");
    h.update(secret);
    format!("hs256-{}", &hex::encode(h.finalize())[..16])
}

/// Kid (RFC 7638 thumbprint), public JWK and decoding key of an Ed25519
/// public key.
fn ed25519_public(public: &[u8; 32]) -> Result<(String, Jwk, DecodingKey), CoreError> {
    let x = URL_SAFE_NO_PAD.encode(public);
    // RFC 7638 §3.2: members in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    let decoding = DecodingKey::from_ed_components(&x)
        .map_err(|e| CoreError::internal(format!("ed25519 public key: {e}")))?;
    let jwk = Jwk {
        kty: "OKP",
        crv: "Ed25519",
        x,
        kid: kid.clone(),
        alg: "EdDSA",
        usage: "sig",
    };
    Ok((kid, jwk, decoding))
}

#[cfg(test)]
mod tests;
