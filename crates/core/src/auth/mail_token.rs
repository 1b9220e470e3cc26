//! One-time mail secrets: a 256-bit token for the link (stored as SHA-256,
//! like refresh tokens) and a short code to type. The code has 40 bits, so
//! it is stored as a keyed hash (the blind index: a stolen database cannot
//! be used to try codes offline), lives shorter than the link, and every
//! wrong one counts toward the account's lockout.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::CoreError;

/// Crockford's base32: no I, L, O or U, so nothing reads ambiguously.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a code (8 × 5 = 40 bits).
pub const CODE_LEN: usize = 8;

/// A new token, its digest, and a new code (shown as `XXXX-XXXX`).
#[derive(Debug)]
pub struct MailSecret {
    pub token: SecretString,
    pub digest: String,
    pub code: SecretString,
}

fn random<const N: usize>() -> Result<[u8; N], CoreError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| CoreError::internal(e.to_string()))?;
    Ok(bytes)
}

pub fn generate() -> Result<MailSecret, CoreError> {
    let token = URL_SAFE_NO_PAD.encode(random::<32>()?);
    let digest = digest(&token);
    // 32 symbols: each random byte's low five bits pick one, uniformly.
    let raw: String = random::<CODE_LEN>()?
        .iter()
        .map(|b| char::from(CODE_ALPHABET[usize::from(b & 31)]))
        .collect();
    let code = format!("{}-{}", &raw[..4], &raw[4..]);
    Ok(MailSecret {
        token: token.into(),
        digest,
        code: code.into(),
    })
}

/// Hex SHA-256 of a presented token, for lookup.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A typed code in its canonical form: case, spaces and dashes ignored, and
/// the letters people type for digits (O, I, L) read as those digits.
/// `None` when it cannot be a code.
pub fn normalize_code(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(CODE_LEN);
    for c in raw.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !CODE_ALPHABET.contains(&(c as u8)) || out.len() == CODE_LEN {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_LEN).then_some(out)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn tokens_are_random_and_codes_typeable() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.token.expose_secret(), b.token.expose_secret());
        assert_eq!(a.token.expose_secret().len(), 43);
        assert_eq!(digest(a.token.expose_secret()), a.digest);
        let code = a.code.expose_secret();
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
        assert_eq!(normalize_code(code).unwrap(), code.replace('-', ""));
        assert!(!format!("{a:?}").contains(a.token.expose_secret()));
    }

    #[test]
    fn typed_codes_are_read_forgivingly_but_strictly() {
        assert_eq!(normalize_code("abcd-efgh").as_deref(), Some("ABCDEFGH"));
        assert_eq!(normalize_code(" oil 1 2345 ").as_deref(), Some("01112345"));
        assert_eq!(normalize_code("ABCD-EFG"), None, "too short");
        assert_eq!(normalize_code("ABCD-EFGHJ"), None, "too long");
        assert_eq!(
            normalize_code("ABCD-EFGU"),
            None,
            "U is not in the alphabet"
        );
        assert_eq!(normalize_code("ÄBCD-EFGH"), None);
    }
}
