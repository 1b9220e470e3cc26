//! Field-level encryption of PII at rest (AES-256-GCM, key id stored with
//! each value) and the keyed blind index used to look values up.

use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::CoreError;
use crate::config::{DataKey, DataKeys};

const NONCE_LEN: usize = 12;

/// Encrypts and decrypts field values as `kid:base64(nonce‖ciphertext)`.
/// The field name is bound as associated data, so a value copied into
/// another column does not decrypt.
#[derive(Debug, Clone)]
pub struct FieldCipher {
    keys: Arc<DataKeys>,
}

impl FieldCipher {
    pub fn new(keys: Arc<DataKeys>) -> Self {
        Self { keys }
    }

    pub fn encrypt(&self, field: &str, plaintext: &str) -> Result<String, CoreError> {
        let key = self.keys.primary();
        let cipher = Aes256Gcm::new_from_slice(key.bytes())
            .map_err(|_| CoreError::internal("data key has the wrong length"))?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| CoreError::internal(e.to_string()))?;
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: field.as_bytes(),
                },
            )
            .map_err(|_| CoreError::internal("encryption failed"))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        Ok(format!("{}:{}", key.kid, STANDARD.encode(blob)))
    }

    pub fn decrypt(&self, field: &str, stored: &str) -> Result<String, CoreError> {
        let (kid, b64) = stored
            .split_once(':')
            .ok_or_else(|| CoreError::internal("encrypted value has no key id"))?;
        let key = self
            .keys
            .get(kid)
            .ok_or_else(|| CoreError::internal(format!("no data key with id `{kid}`")))?;
        let blob = STANDARD
            .decode(b64)
            .map_err(|_| CoreError::internal("encrypted value is not base64"))?;
        if blob.len() < NONCE_LEN {
            return Err(CoreError::internal("encrypted value is truncated"));
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new_from_slice(key.bytes())
            .map_err(|_| CoreError::internal("data key has the wrong length"))?;
        let plaintext = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: field.as_bytes(),
                },
            )
            .map_err(|_| CoreError::internal("decryption failed (wrong key or tampered value)"))?;
        String::from_utf8(plaintext)
            .map_err(|_| CoreError::internal("decrypted value is not UTF-8"))
    }

    /// Key id a stored value was encrypted with.
    pub fn key_id(stored: &str) -> Option<&str> {
        stored.split_once(':').map(|(kid, _)| kid)
    }

    pub fn primary_kid(&self) -> &str {
        &self.keys.primary().kid
    }
}

/// HMAC-SHA256 of a normalised value: equal inputs give equal indexes, and
/// without the key nobody can test a guess against the database.
#[derive(Debug, Clone)]
pub struct BlindIndex {
    key: Arc<DataKey>,
}

impl BlindIndex {
    pub fn new(key: Arc<DataKey>) -> Self {
        Self { key }
    }

    pub fn of(&self, field: &str, normalized: &str) -> String {
        // `new_from_slice` accepts any key length for HMAC.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(self.key.bytes()) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        mac.update(field.as_bytes());
        mac.update(b"\0");
        mac.update(normalized.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[(&str, u8)]) -> Arc<DataKeys> {
        Arc::new(
            DataKeys::from_keys(
                list.iter()
                    .map(|(kid, b)| DataKey::new(*kid, [*b; 32]))
                    .collect(),
            )
            .unwrap(),
        )
    }

    #[test]
    fn round_trip_with_key_id_and_random_nonce() {
        let cipher = FieldCipher::new(keys(&[("k1", 1)]));
        let a = cipher.encrypt("email", "jane@example.com").unwrap();
        let b = cipher.encrypt("email", "jane@example.com").unwrap();
        assert!(a.starts_with("k1:"));
        assert_ne!(a, b, "fresh nonce each time");
        assert!(!a.contains("jane"));
        assert_eq!(cipher.decrypt("email", &a).unwrap(), "jane@example.com");
        assert!(
            cipher.decrypt("full_name", &a).is_err(),
            "bound to its field"
        );
    }

    #[test]
    fn old_keys_decrypt_and_tampering_is_detected() {
        let old = FieldCipher::new(keys(&[("k1", 1)]));
        let value = old.encrypt("email", "x@example.com").unwrap();
        let rotated = FieldCipher::new(keys(&[("k2", 2), ("k1", 1)]));
        assert_eq!(rotated.decrypt("email", &value).unwrap(), "x@example.com");
        assert!(
            rotated
                .encrypt("email", "y@example.com")
                .unwrap()
                .starts_with("k2:")
        );
        let mut tampered = value.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(
            old.decrypt("email", &String::from_utf8(tampered).unwrap())
                .is_err()
        );
        assert!(
            FieldCipher::new(keys(&[("k3", 3)]))
                .decrypt("email", &value)
                .is_err()
        );
    }

    #[test]
    fn blind_index_is_keyed_and_deterministic() {
        let a = BlindIndex::new(Arc::new(DataKey::new("b", [1; 32])));
        let b = BlindIndex::new(Arc::new(DataKey::new("b", [2; 32])));
        assert_eq!(
            a.of("email", "x@example.com"),
            a.of("email", "x@example.com")
        );
        assert_ne!(
            a.of("email", "x@example.com"),
            b.of("email", "x@example.com")
        );
        assert_ne!(
            a.of("email", "x@example.com"),
            a.of("email", "y@example.com")
        );
        assert_eq!(a.of("email", "x@example.com").len(), 64);
    }
}
