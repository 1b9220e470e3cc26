//! `gatehouse healthcheck`: one `GET /health` over HTTP/1.1, for container
//! runtimes and supervisors that have no curl. Exit 0 on a 200 within the
//! time limit, 1 otherwise (Docker reserves exit code 2). When HTTPS is
//! served directly it speaks TLS, to loopback only (see [`loopback_tls`]).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use gatehouse_core::network::HostPattern;

use crate::loopback_tls::{self, Conn};

/// Where to ask and which `Host` to name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    host: String,
    port: u16,
    path: String,
    /// The `Host` header: the service refuses names outside `ALLOWED_HOSTS`.
    host_header: String,
    /// Over TLS, without verifying the certificate: loopback only.
    is_https: bool,
}

impl Target {
    /// `http://host[:port][/path]`, or `https://` to a loopback address
    /// (the certificate is not verified); no path means `/health`.
    pub fn from_url(url: &str) -> Result<Self, String> {
        let (rest, is_https) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (rest, false),
            (None, Some(rest)) => (rest, true),
            (None, None) => return Err(format!("{url}: expected an http:// or https:// URL")),
        };
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let default_port = if is_https { 443 } else { 80 };
        let (host, port) = split_authority(authority, default_port)
            .ok_or_else(|| format!("{url}: expected http(s)://host[:port][/path]"))?;
        if is_https && !is_loopback(&host) {
            return Err(format!(
                "{url}: https:// only to a loopback address (the probe does not verify \
                 certificates)"
            ));
        }
        let path = if path.is_empty() || path == "/" {
            "/health".to_owned()
        } else {
            path.to_owned()
        };
        Ok(Self {
            host,
            port,
            path,
            host_header: authority.to_owned(),
            is_https,
        })
    }

    /// `/health` on the service's own listener: a wildcard bind address is
    /// reached through loopback, under a name `ALLOWED_HOSTS` accepts; over
    /// TLS when HTTPS is served directly.
    pub fn local(
        bind: SocketAddr,
        allowed: &[HostPattern],
        is_https: bool,
    ) -> Result<Self, String> {
        if bind.port() == 0 {
            return Err("BIND_ADDR has port 0 (picked at start): pass --url".into());
        }
        let ip = match bind.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Ok(Self {
            host: ip.to_string(),
            port: bind.port(),
            path: "/health".into(),
            host_header: allowed_name(allowed)
                .unwrap_or_else(|| SocketAddr::new(ip, bind.port()).to_string()),
            is_https,
        })
    }

    pub fn set_host_header(&mut self, host: &str) {
        host.clone_into(&mut self.host_header);
    }

    pub fn url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let scheme = if self.is_https { "https" } else { "http" };
        format!("{scheme}://{host}:{}{}", self.port, self.path)
    }
}

/// A name the `Host` check lets through: the first exact entry, else one
/// under the first wildcard.
fn allowed_name(allowed: &[HostPattern]) -> Option<String> {
    let exact = allowed.iter().find_map(|p| match p {
        HostPattern::Exact(name) if name.parse::<Ipv6Addr>().is_ok() => Some(format!("[{name}]")),
        HostPattern::Exact(name) => Some(name.clone()),
        _ => None,
    });
    exact.or_else(|| {
        allowed.iter().find_map(|p| match p {
            HostPattern::Subdomains(suffix) => Some(format!("healthcheck.{suffix}")),
            _ => None,
        })
    })
}

/// `localhost` or a loopback IP address.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `host[:port]` or `[v6][:port]`; `default_port` when absent.
fn split_authority(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

/// Asks once; `Ok` only for a 200 within `timeout` (the whole exchange).
pub fn probe(target: &Target, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("no answer within {} ms", timeout.as_millis()))
    };
    let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
        .collect();
    let mut last_error = format!("{} resolves to no address", target.host);
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left()?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = format!("cannot connect to {addr}: {e}"),
        }
    }
    let stream = stream.ok_or(last_error)?;
    let mut stream = if target.is_https {
        // Only loopback targets get here (see `Target`).
        loopback_tls::Conn::tls(stream, &target.host)?
    } else {
        Conn::Plain(stream)
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: gatehouse-healthcheck\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n",
        target.path, target.host_header
    );
    stream
        .tcp()
        .set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let status = read_status(&mut stream, &left)?;
    if status == 200 {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

/// Reads up to the end of the status line and returns its code.
fn read_status(
    stream: &mut Conn,
    left: &dyn Fn() -> Result<Duration, String>,
) -> Result<u16, String> {
    let mut head = Vec::with_capacity(128);
    let mut buf = [0u8; 128];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 1024 {
        stream
            .tcp()
            .set_read_timeout(Some(left()?))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(left().err().unwrap_or_else(|| e.to_string()));
            }
            Err(e) => return Err(format!("cannot read the answer: {e}")),
        }
    }
    parse_status(&head).ok_or_else(|| "the answer is not HTTP/1.x".to_owned())
}

fn parse_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_host_port_and_path() {
        let t = Target::from_url("http://gatehouse-1:8000").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("gatehouse-1", 8000, "/health")
        );
        assert_eq!(t.host_header, "gatehouse-1:8000");
        let t = Target::from_url("http://[::1]/ready").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 80, "/ready")
        );
        assert_eq!(t.url(), "http://[::1]:80/ready");
        let t = Target::from_url("https://127.0.0.1:8443").unwrap();
        assert_eq!(t.url(), "https://127.0.0.1:8443/health");
        assert_eq!(Target::from_url("https://localhost").unwrap().port, 443);
        for bad in ["https://example.com", "http://", "http://h:port", "ftp://h"] {
            assert!(Target::from_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_local_target_goes_through_loopback_under_an_allowed_name() {
        let allowed = [
            HostPattern::parse("*.example.com").unwrap(),
            HostPattern::parse("auth.example.com").unwrap(),
        ];
        let t = Target::local("0.0.0.0:8000".parse().unwrap(), &allowed, false).unwrap();
        assert_eq!(t.url(), "http://127.0.0.1:8000/health");
        assert_eq!(t.host_header, "auth.example.com");
        let t = Target::local("[::]:8000".parse().unwrap(), &allowed[..1], true).unwrap();
        assert_eq!(t.url(), "https://[::1]:8000/health");
        assert_eq!(t.host_header, "healthcheck.example.com");
        assert!(Target::local("127.0.0.1:0".parse().unwrap(), &allowed, false).is_err());
    }

    #[test]
    fn only_an_http_status_line_counts() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            parse_status(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status(b""), None);
    }
}
