//! W3C Trace Context: the trace id of an incoming `traceparent` header, so a
//! request's log line joins the caller's distributed trace.

use http::HeaderName;

pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Length of `version-traceid-parentid-flags` for version `00`.
const LEN: usize = 55;

fn is_lower_hex(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The trace id of a valid `traceparent` value, else `None`. Rules of W3C
/// Trace Context §3.2: lowercase hex, version `ff` invalid, all-zero trace
/// and parent ids invalid; later versions may append `-`-separated fields.
pub fn trace_id(value: &[u8]) -> Option<&str> {
    let head = value.get(..LEN)?;
    let version = &head[0..2];
    if !is_lower_hex(version) || version == b"ff" {
        return None;
    }
    if value.len() > LEN && (version == b"00" || value[LEN] != b'-') {
        return None;
    }
    if head[2] != b'-' || head[35] != b'-' || head[52] != b'-' {
        return None;
    }
    let (trace, parent, flags) = (&head[3..35], &head[36..52], &head[53..55]);
    if !is_lower_hex(trace) || !is_lower_hex(parent) || !is_lower_hex(flags) {
        return None;
    }
    if trace.iter().all(|&b| b == b'0') || parent.iter().all(|&b| b == b'0') {
        return None;
    }
    std::str::from_utf8(trace).ok()
}

#[cfg(test)]
mod tests {
    use super::trace_id;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn valid_headers_yield_their_trace_id() {
        assert_eq!(
            trace_id(VALID.as_bytes()),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        // A later version may carry more fields after a dash.
        let future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
        assert_eq!(
            trace_id(future.as_bytes()),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }

    #[test]
    fn invalid_headers_are_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(trace_id(bad.as_bytes()), None, "{bad}");
        }
    }
}
