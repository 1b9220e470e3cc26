//! Second factors: TOTP (RFC 6238: SHA-1, 6 digits, 30 s, ±1 step of skew)
//! and single-use backup codes.

use qrcode::QrCode;
use qrcode::render::svg;
use totp_rs::{Algorithm, Builder, Secret};

use crate::CoreError;

const ISSUER: &str = "Gatehouse";
/// Secret length: 160 bits, RFC 4226 §4's recommendation.
const SECRET_LEN: usize = 20;
pub const BACKUP_CODES: usize = 10;

/// A fresh TOTP secret.
pub fn new_secret() -> Result<Vec<u8>, CoreError> {
    let mut bytes = vec![0u8; SECRET_LEN];
    getrandom::fill(&mut bytes).map_err(|e| CoreError::internal(e.to_string()))?;
    Ok(bytes)
}

pub fn base32(secret: &[u8]) -> String {
    Secret::from(secret.to_vec()).to_base32()
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The `otpauth://` URL authenticator apps import.
pub fn otpauth_url(account: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits=6&period=30",
        issuer = encode(ISSUER),
        account = encode(account),
        secret = base32(secret),
    )
}

/// The URL as a QR code, rendered as SVG by the server.
pub fn qr_svg(url: &str) -> Result<String, CoreError> {
    let code = QrCode::new(url.as_bytes()).map_err(|e| CoreError::internal(e.to_string()))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build())
}

/// The time step a valid `code` belongs to (now ±1 step), or `None`.
pub fn check(secret: &[u8], code: &str, unix_secs: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .build()
        .ok()?;
    totp.check(code, unix_secs)
}

/// The code for `unix_secs` (tests and tooling).
pub fn code_at(secret: &[u8], unix_secs: u64) -> Option<String> {
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .build()
        .ok()?;
    Some(totp.generate(unix_secs).to_string())
}

/// Ten codes like `k7p2q-9xw4m` (50 bits each).
pub fn new_backup_codes() -> Result<Vec<String>, CoreError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut codes = Vec::with_capacity(BACKUP_CODES);
    for _ in 0..BACKUP_CODES {
        let mut raw = [0u8; 10];
        getrandom::fill(&mut raw).map_err(|e| CoreError::internal(e.to_string()))?;
        let chars: String = raw
            .iter()
            .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
            .collect();
        codes.push(format!("{}-{}", &chars[..5], &chars[5..]));
    }
    Ok(codes)
}

/// Backup codes are compared without case, spaces or dashes.
pub fn normalize_backup_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_check_with_one_step_of_skew() {
        let secret = new_secret().unwrap();
        let t = 1_800_000_000;
        let code = code_at(&secret, t).unwrap();
        assert_eq!(check(&secret, &code, t), Some(t / 30));
        assert!(check(&secret, &code, t + 30).is_some(), "one step late");
        assert!(check(&secret, &code, t - 30).is_some(), "one step early");
        assert!(check(&secret, &code, t + 90).is_none(), "too late");
        assert!(check(&secret, "abcdef", t).is_none());
        assert!(check(&secret, "12345", t).is_none());
    }

    #[test]
    fn urls_qr_and_backup_codes() {
        let secret = new_secret().unwrap();
        let url = otpauth_url("jane doe", &secret);
        assert!(url.starts_with("otpauth://totp/Gatehouse:jane%20doe?secret="));
        assert!(url.contains(&base32(&secret)));
        assert!(qr_svg(&url).unwrap().contains("<svg"));
        let codes = new_backup_codes().unwrap();
        assert_eq!(codes.len(), 10);
        assert_eq!(normalize_backup_code(&codes[0].to_uppercase()).len(), 10);
    }
}
