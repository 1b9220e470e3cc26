//! Client addressing rules: which IP a request comes from, and which `Host`
//! names the service answers to.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv6Net};

/// Resolves the client IP: the socket peer, unless the peer is a trusted
/// proxy, in which case the right-most `X-Forwarded-For` hop that is not itself
/// trusted (hops left of it could be forged by the client). `forwarded_for`
/// holds every `X-Forwarded-For` line in the order received: together they
/// are one list (RFC 9110 §5.3), so a proxy that adds its own line instead of
/// appending to the client's is read right. IPv4-mapped IPv6 addresses are
/// read as the IPv4 addresses they carry.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|line| line.split(','))
        .map(str::trim)
        // RFC 9110 §5.6.1: empty list elements are ignored.
        .filter(|hop| !hop.is_empty())
        .collect();
    let mut last_valid = None;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>().map(|ip| ip.to_canonical()) else {
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

/// The network a per-IP limit counts against: an IPv4 client (mapped into
/// IPv6 or not) is its own address; an IPv6 client is its network of
/// `ipv6_prefix` bits, since one host is routinely given a whole /64 and could
/// otherwise take a fresh limit per address.
pub fn limit_subject(ip: IpAddr, ipv6_prefix: u8) -> IpNet {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpNet::from(IpAddr::V4(v4)),
        // A prefix past 128 cannot come from the settings; the host alone
        // is the safe reading.
        IpAddr::V6(v6) => Ipv6Net::new(v6, ipv6_prefix).map_or_else(
            |_| IpNet::from(IpAddr::V6(v6)),
            |net| IpNet::V6(net.trunc()),
        ),
    }
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

/// The host of a `Host` header value: its port and an IPv6 literal's
/// brackets removed; `None` when it is malformed.
pub fn host_without_port(value: &str) -> Option<&str> {
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
            ["1.2.3.4"],
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(ip, "203.0.113.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_peer_takes_rightmost_untrusted_hop() {
        let trusted = nets(&["10.0.0.0/8"]);
        let ip = client_ip(
            "10.0.0.1".parse().unwrap(),
            ["6.6.6.6, 198.51.100.7, 10.0.0.2"],
            &trusted,
        );
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_peer_without_header_is_the_client() {
        let ip = client_ip("10.0.0.1".parse().unwrap(), [], &nets(&["10.0.0.0/8"]));
        assert_eq!(ip, "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn garbage_hop_stops_the_walk() {
        let ip = client_ip(
            "10.0.0.1".parse().unwrap(),
            ["1.1.1.1, not-an-ip"],
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(ip, "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_forwarded_for_line_counts_in_order() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        // The proxy added its own line: the client is on the second one.
        let lines = ["192.0.2.66", "203.0.113.7"];
        assert_eq!(client_ip(peer, lines, &trusted), ip("203.0.113.7"));
        let lines = ["192.0.2.66, 198.51.100.1", "203.0.113.7, 10.0.0.2"];
        assert_eq!(client_ip(peer, lines, &trusted), ip("203.0.113.7"));
        // Trusted hops on the last line are skipped into the line before.
        let lines = ["192.0.2.66, 198.51.100.1", "10.0.0.3, 10.0.0.2"];
        assert_eq!(client_ip(peer, lines, &trusted), ip("198.51.100.1"));
    }

    #[test]
    fn a_spoofed_left_most_entry_is_ignored() {
        let trusted = nets(&["10.0.0.0/8"]);
        for spoof in ["1.1.1.1", "10.0.0.77", "::1"] {
            let lines = [spoof, "203.0.113.9, 10.0.0.2"];
            assert_eq!(
                client_ip(ip("10.0.0.1"), lines, &trusted),
                ip("203.0.113.9"),
                "{spoof}"
            );
        }
    }

    #[test]
    fn all_trusted_hops_leave_the_left_most() {
        let trusted = nets(&["10.0.0.0/8"]);
        let lines = ["10.0.0.5", "10.0.0.3, 10.0.0.2"];
        assert_eq!(client_ip(ip("10.0.0.1"), lines, &trusted), ip("10.0.0.5"));
    }

    #[test]
    fn empty_list_elements_are_skipped() {
        // RFC 9110 §5.6.1: empty list elements are ignored.
        let trusted = nets(&["10.0.0.0/8"]);
        let lines = ["203.0.113.1, ,", "", " 10.0.0.2"];
        assert_eq!(
            client_ip(ip("10.0.0.1"), lines, &trusted),
            ip("203.0.113.1")
        );
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let trusted = nets(&["10.0.0.0/8"]);
        // A mapped peer inside an IPv4 range is that proxy.
        let client = client_ip(ip("::ffff:10.0.0.1"), ["::ffff:203.0.113.4"], &trusted);
        assert_eq!(client, ip("203.0.113.4"));
        assert_eq!(client_ip(ip("::ffff:192.0.2.1"), [], &[]), ip("192.0.2.1"));
    }

    #[test]
    fn an_ipv6_client_is_its_network() {
        let a = limit_subject(ip("2001:db8:1:2::1"), 64);
        let b = limit_subject(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), 64);
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_ne!(a, limit_subject(ip("2001:db8:1:3::1"), 64));
        assert_eq!(
            limit_subject(ip("2001:db8::1"), 48).to_string(),
            "2001:db8::/48"
        );
        assert_ne!(
            limit_subject(ip("2001:db8::1"), 128),
            limit_subject(ip("2001:db8::2"), 128)
        );
    }

    #[test]
    fn an_ipv4_client_is_its_address() {
        assert_eq!(
            limit_subject(ip("203.0.113.5"), 64).to_string(),
            "203.0.113.5/32"
        );
        // Mapped into IPv6, still the same IPv4 client, not ::ffff:0:0/64.
        assert_eq!(
            limit_subject(ip("::ffff:203.0.113.5"), 64),
            limit_subject(ip("203.0.113.5"), 64)
        );
        assert_ne!(
            limit_subject(ip("::ffff:203.0.113.5"), 64),
            limit_subject(ip("::ffff:203.0.113.6"), 64)
        );
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
