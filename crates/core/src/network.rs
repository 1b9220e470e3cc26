//! Client addressing rules: which IP a request comes from, and which `Host`
//! names the service answers to.

use std::net::IpAddr;

use ipnet::IpNet;

/// Resolves the client IP: the socket peer, unless the peer is a trusted
/// proxy, in which case the right-most `X-Forwarded-For` hop that is not itself
/// trusted (hops left of it could be forged by the client).
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut last_valid = None;
    for hop in header.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // A malformed hop ends the chain we can vouch for.
            break;
        };
        last_valid = Some(ip);
        if !is_trusted(&ip) {
            return ip;
        }
    }
    // Every hop was trusted (or none parsed): the left-most valid one is the
    // closest thing to a client address.
    last_valid.unwrap_or(peer)
}

/// One entry of `ALLOWED_HOSTS`: an exact name, a `*.suffix` wildcard, or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Any,
    Exact(String),
    /// Matches any name ending in `.suffix` (not the bare suffix).
    Subdomains(String),
}

impl HostPattern {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim().to_ascii_lowercase();
        if raw == "*" {
            return Ok(Self::Any);
        }
        if let Some(suffix) = raw.strip_prefix("*.") {
            if is_host_name(suffix) {
                return Ok(Self::Subdomains(suffix.to_owned()));
            }
        } else if is_host_name(&raw) || raw.parse::<IpAddr>().is_ok() {
            return Ok(Self::Exact(raw));
        }
        Err(format!(
            "`{raw}` is not a host name, IP address or `*.domain` pattern"
        ))
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(name) => name == host,
            Self::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
        }
    }
}

/// As written in `ALLOWED_HOSTS`.
impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Exact(name) => f.write_str(name),
            Self::Subdomains(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// True when the `Host` header value (port optional) matches one pattern.
pub fn is_host_allowed(host_header: &str, allowed: &[HostPattern]) -> bool {
    let Some(host) = host_without_port(host_header) else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    allowed.iter().any(|pattern| pattern.matches(&host))
}

fn host_without_port(value: &str) -> Option<&str> {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix('[') {
        // IPv6 literal: `[::1]` or `[::1]:8000`.
        let (addr, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return Some(addr);
    }
    match value.rsplit_once(':') {
        Some((host, port)) if is_port(port) => Some(host),
        Some(_) => None,
        None => Some(value),
    }
    .filter(|h| !h.is_empty())
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peer_ignores_forwarded_for() {
        let ip = client_ip(
            "203.0.113.9".parse().unwrap(),
            Some("1.2.3.4"),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(ip, "203.0.113.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_peer_takes_rightmost_untrusted_hop() {
        let trusted = nets(&["10.0.0.0/8"]);
        let ip = client_ip(
            "10.0.0.1".parse().unwrap(),
            Some("6.6.6.6, 198.51.100.7, 10.0.0.2"),
            &trusted,
        );
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_peer_without_header_is_the_client() {
        let ip = client_ip("10.0.0.1".parse().unwrap(), None, &nets(&["10.0.0.0/8"]));
        assert_eq!(ip, "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn garbage_hop_stops_the_walk() {
        let ip = client_ip(
            "10.0.0.1".parse().unwrap(),
            Some("1.1.1.1, not-an-ip"),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(ip, "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn host_patterns() {
        let allowed: Vec<_> = ["localhost", "127.0.0.1", "*.example.com", "::1"]
            .iter()
            .map(|p| HostPattern::parse(p).unwrap())
            .collect();
        for ok in [
            "localhost",
            "LOCALHOST:8000",
            "127.0.0.1:80",
            "a.example.com",
            "a.b.example.com",
            "[::1]:8000",
        ] {
            assert!(is_host_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "example.com",
            "evil.com",
            "xexample.com",
            "localhost:abc",
            "",
            "[::1",
            "a.example.com.evil.org",
        ] {
            assert!(!is_host_allowed(bad, &allowed), "{bad}");
        }
        assert!(HostPattern::parse("bad host").is_err());
        assert!(is_host_allowed("anything", &[HostPattern::Any]));
    }
}
