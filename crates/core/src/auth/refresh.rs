//! Opaque refresh tokens: 256 random bits, shown once, stored as SHA-256.
//! A fast hash is right here: the token is random, not a guessable password.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::CoreError;

/// A new refresh token and the digest to store.
#[derive(Debug)]
pub struct IssuedRefresh {
    pub token: secrecy::SecretString,
    pub digest: String,
}

pub fn generate() -> Result<IssuedRefresh, CoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| CoreError::internal(e.to_string()))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let digest = digest(&token);
    Ok(IssuedRefresh {
        token: token.into(),
        digest,
    })
}

/// Hex SHA-256 of a presented token, for lookup.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn tokens_are_random_and_digests_stable() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.token.expose_secret(), b.token.expose_secret());
        assert_eq!(a.token.expose_secret().len(), 43);
        assert_eq!(digest(a.token.expose_secret()), a.digest);
        assert!(!format!("{a:?}").contains(a.token.expose_secret()));
    }
}
