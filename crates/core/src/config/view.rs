//! URLs as operators may see them: connection strings lose their credentials
//! (for the redacted view of `check-config` and `GET /admin/config`).

use super::settings::REDACTED;

/// Removes the user-info part (`user:password@`) from a URL, which is where
/// connection strings keep their credentials, and drops the query string,
/// which may carry them too.
pub fn redact_url(url: &str) -> String {
    if url.starts_with("sqlite:") {
        // A file path; SQLite URLs carry no credentials.
        return url.split('?').next().unwrap_or_default().to_owned();
    }
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => return REDACTED.to_owned(),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{REDACTED}@{host}"),
        None => authority.to_owned(),
    };
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/gh?password=x"),
            "postgres://[redacted]@db:5432/gh"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("sqlite://./data/gatehouse.db"),
            "sqlite://./data/gatehouse.db"
        );
        assert_eq!(redact_url("garbage"), "[redacted]");
    }
}
