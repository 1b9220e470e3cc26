//! Key material from configuration: data-encryption keys (`kid:base64` list),
//! the blind-index key, random secrets for development, and how settings
//! holding keys are read and shown.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretBox};
use serde_json::Value;

use super::reader::Reader;
use super::settings::{Kind, NO_DEFAULT, REDACTED, secret_state};

/// Length of every symmetric data key (AES-256, HMAC-SHA256).
pub const KEY_LEN: usize = 32;

/// A 32-byte key with its id. `Debug` never shows the bytes.
#[derive(Debug)]
pub struct DataKey {
    pub kid: String,
    key: SecretBox<[u8; KEY_LEN]>,
}

impl DataKey {
    pub fn new(kid: impl Into<String>, key: [u8; KEY_LEN]) -> Self {
        Self {
            kid: kid.into(),
            key: SecretBox::new(Box::new(key)),
        }
    }

    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        self.key.expose_secret()
    }
}

/// Data-encryption keys: the first encrypts, all decrypt.
#[derive(Debug)]
pub struct DataKeys {
    keys: Vec<DataKey>,
}

impl DataKeys {
    /// Parses `kid:base64key[,kid:base64key…]`. Errors never include key bytes.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut keys: Vec<DataKey> = Vec::new();
        for (i, entry) in raw
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let n = i + 1;
            let (kid, b64) = entry
                .split_once(':')
                .ok_or_else(|| format!("entry {n} is not `kid:base64key`"))?;
            let kid = kid.trim();
            if !is_kid(kid) {
                return Err(format!(
                    "entry {n}: key id must be 1-32 characters of A-Z a-z 0-9 _ -"
                ));
            }
            if keys.iter().any(|k| k.kid == kid) {
                return Err(format!("entry {n}: key id `{kid}` appears twice"));
            }
            let key = parse_base64_key(b64).map_err(|e| format!("entry {n} (`{kid}`): {e}"))?;
            keys.push(DataKey::new(kid, key));
        }
        if keys.is_empty() {
            return Err("no keys given".into());
        }
        Ok(Self { keys })
    }

    pub fn from_keys(keys: Vec<DataKey>) -> Option<Self> {
        (!keys.is_empty()).then_some(Self { keys })
    }

    /// The key that encrypts new values.
    pub fn primary(&self) -> &DataKey {
        // `parse`/`from_keys` guarantee at least one key.
        &self.keys[0]
    }

    pub fn get(&self, kid: &str) -> Option<&DataKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }
}

fn is_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 32
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Decodes a standard-base64 32-byte key.
pub fn parse_base64_key(b64: &str) -> Result<[u8; KEY_LEN], String> {
    let bytes = STANDARD
        .decode(b64.trim())
        .map_err(|_| "key is not valid standard base64".to_owned())?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice())
        .map_err(|_| format!("key must decode to {KEY_LEN} bytes, got {}", bytes.len()))
}

/// A fresh random 32-byte key.
pub fn generate_key() -> Result<[u8; KEY_LEN], getrandom::Error> {
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key)?;
    Ok(key)
}

/// A random HS256 secret for development (64 url-safe characters); `None`
/// when the OS has no random source.
pub(crate) fn random_secret() -> Option<String> {
    let mut bytes = [0u8; 48];
    getrandom::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// Encodes a key as standard base64 (for writing development key files).
pub fn encode_key(key: &[u8; KEY_LEN]) -> String {
    STANDARD.encode(key)
}

/// Key material: the data keys (`kid:base64key,…`) or one base64 key. Shown
/// by key id at most, never by value.
#[derive(Debug, Clone, Copy)]
pub struct KeyMaterial;

impl Kind<Option<Arc<DataKeys>>> for KeyMaterial {
    type Default = ();

    fn read(&self, r: &mut Reader, var: &'static str, (): ()) -> Option<Arc<DataKeys>> {
        match DataKeys::parse(&r.raw(var)?) {
            Ok(keys) => Some(Arc::new(keys)),
            Err(e) => {
                r.problem(var, e);
                None
            }
        }
    }

    fn show(&self, value: &Option<Arc<DataKeys>>) -> Value {
        value.as_ref().map_or(Value::Null, |keys| {
            // Key ids are not secret and tell operators which key encrypts.
            keys.kids().map(|k| format!("{k}:{REDACTED}")).collect()
        })
    }

    fn describe(&self, (): &()) -> String {
        NO_DEFAULT.to_owned()
    }
}

impl Kind<Option<Arc<DataKey>>> for KeyMaterial {
    type Default = ();

    fn read(&self, r: &mut Reader, var: &'static str, (): ()) -> Option<Arc<DataKey>> {
        match parse_base64_key(&r.raw(var)?) {
            Ok(key) => Some(Arc::new(DataKey::new(var.to_ascii_lowercase(), key))),
            Err(e) => {
                r.problem(var, e);
                None
            }
        }
    }

    fn show(&self, value: &Option<Arc<DataKey>>) -> Value {
        secret_state(value.is_some())
    }

    fn describe(&self, (): &()) -> String {
        NO_DEFAULT.to_owned()
    }
}

/// Why a configured HS256 secret is too weak to sign tokens in production,
/// if it is: made of a repeated pattern, or with too little entropy for its
/// length (a word or phrase rather than random bytes). The entropy is the
/// empirical Shannon entropy of its characters times its length; random
/// hex, base64 or alphanumeric secrets of 32 characters or more pass with a
/// wide margin, dictionary phrases and keyboard runs do not (RFC 7518 §3.2
/// asks for a key as strong as the hash: 256 bits).
pub fn weak_secret(secret: &str) -> Option<&'static str> {
    let chars: Vec<char> = secret.chars().collect();
    let n = chars.len();
    if n == 0 {
        return Some("is empty");
    }
    // A repeated unit ("aaaa…", "abcabc…", "secretsecret…").
    let periodic = (1..=n / 2)
        .any(|p| n.is_multiple_of(p) && chars.iter().skip(p).zip(&chars).all(|(a, b)| a == b));
    if periodic {
        return Some("is a repeated pattern; use a random secret (e.g. `openssl rand -base64 48`)");
    }
    let mut counts = std::collections::HashMap::new();
    for c in &chars {
        *counts.entry(*c).or_insert(0usize) += 1;
    }
    let len = n as f64;
    let per_char: f64 = counts
        .values()
        .map(|&k| {
            let p = k as f64 / len;
            -p * p.log2()
        })
        .sum();
    if counts.len() < 8 || per_char * len < 128.0 {
        return Some(
            "has too little entropy (a word or phrase?); use a random secret (e.g. `openssl rand -base64 48`)",
        );
    }
    None
}

#[cfg(test)]
mod weak_secret_tests {
    use super::weak_secret;

    #[test]
    fn random_secrets_pass_and_words_or_patterns_do_not() {
        for good in [
            "5d33c1852f18303398930f061b86e8d037c1afc8d486430a2b8f443824b56f72",
            "q8vJ3xN0pZr2Lk7Tw5yHb1Mc9Fd4Gs6A",
            "k1W+T0aH3gX9m2Yv8bQ5nL7cR4zP6dS1fJ0eU3iO=",
        ] {
            assert_eq!(weak_secret(good), None, "{good}");
        }
        for weak in [
            "a".repeat(40).as_str(),
            "secretsecretsecretsecretsecretsecret",
            "abcabcabcabcabcabcabcabcabcabcabcabc",
            "supersecretkeyforjwtsupersecretkey1",
            "passwordpassword12345678passwordpass",
            "0123456789012345678901234567890123",
        ] {
            assert!(weak_secret(weak).is_some(), "{weak}");
        }
    }
}
