//! Where a page may send the browser after sign-in: a path under `/ui` of
//! this site, or a URL on an origin listed in `UI_RETURN_ORIGINS`. Anything
//! else is ignored, never followed (OWASP: unvalidated redirects).

/// Where a successful sign-in goes when no `return_to` is allowed.
pub const HOME: &str = "/ui/account";

/// Longest `return_to` considered.
const MAX_LEN: usize = 2048;

/// `raw` when it may be followed, else `None`.
pub fn check<'a>(raw: &'a str, origins: &[String]) -> Option<&'a str> {
    if raw.is_empty()
        || raw.len() > MAX_LEN
        // Browsers strip tabs and newlines and read `\` as `/`, so
        // `/\evil` or `/\tevil` would leave the site.
        || raw.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
    {
        return None;
    }
    if raw.starts_with('/') {
        return is_own_path(raw).then_some(raw);
    }
    let origin = origin_of(raw)?;
    origins
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(&origin))
        .then_some(raw)
}

/// `/ui` or a path below it; never `//host` (another site), never a dot
/// segment, plain or percent-encoded, that would climb out of `/ui`.
fn is_own_path(raw: &str) -> bool {
    let path = raw.split(['?', '#']).next().unwrap_or_default();
    let under_ui = path == "/ui" || path.starts_with("/ui/");
    under_ui
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
        && !path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
}

/// `?return_to=…` for links between the signed-out pages, or nothing.
pub fn query(allowed: Option<&str>) -> String {
    allowed.map_or_else(String::new, |to| {
        format!(
            "?return_to={}",
            percent_encoding::utf8_percent_encode(to, percent_encoding::NON_ALPHANUMERIC)
        )
    })
}

/// `scheme://authority` of an absolute http(s) URL, lower-cased; `None` for
/// any other kind of URL (`javascript:`, `data:`, userinfo tricks).
fn origin_of(raw: &str) -> Option<String> {
    let (scheme, rest) = raw.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let plain = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    plain.then(|| format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins() -> Vec<String> {
        vec![
            "https://app.example.com".to_owned(),
            "http://localhost:3000".to_owned(),
        ]
    }

    #[test]
    fn own_paths_under_ui_are_followed() {
        for ok in [
            "/ui",
            "/ui/account",
            "/ui/account?tab=sessions",
            "/ui/account#sessions",
        ] {
            assert_eq!(check(ok, &[]), Some(ok), "{ok}");
        }
    }

    #[test]
    fn listed_origins_are_followed() {
        for ok in [
            "https://app.example.com",
            "https://app.example.com/",
            "https://APP.example.com/welcome?x=1",
            "http://localhost:3000/after-login",
        ] {
            assert_eq!(check(ok, &origins()), Some(ok), "{ok}");
        }
    }

    #[test]
    fn everything_else_is_ignored() {
        for bad in [
            "",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/ui/../api/v1/users",
            "/ui/%2e%2e/api",
            "/ui/x/%2E%2E/y",
            "/ui/./account",
            "/api/v1/users/me",
            "/uifoo",
            "/ui\t/x",
            "https://evil.example",
            "https://evil.example/ui/account",
            "https://app.example.com.evil.example/",
            "https://app.example.com@evil.example/",
            "https://evil.example\\@app.example.com/",
            "http://app.example.com",
            "https://app.example.com:8443/",
            "javascript:alert(1)",
            "JavaScript://app.example.com/%0aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "app.example.com",
            " https://app.example.com",
        ] {
            assert_eq!(check(bad, &origins()), None, "{bad:?}");
        }
        assert_eq!(check(&format!("/ui/{}", "a".repeat(MAX_LEN)), &[]), None);
    }

    #[test]
    fn no_origin_is_allowed_by_default() {
        assert_eq!(check("https://app.example.com/", &[]), None);
    }
}
