//! The gRPC metadata keys Fabula reads and writes, and how the request id and the
//! deadline are read from them.

use std::time::Duration;

use http::HeaderMap;
use uuid::Uuid;

/// The caller's bearer token: `authorization: Bearer <jwt>`.
pub const AUTHORIZATION: &str = "authorization";
/// A request id, made by the gateway or the first service when absent, echoed back.
pub const REQUEST_ID: &str = "x-request-id";
/// The W3C trace context, passed along untouched.
pub const TRACEPARENT: &str = "traceparent";
/// The time a client gives a call, in the wire form [`parse_grpc_timeout`] reads.
pub const GRPC_TIMEOUT: &str = "grpc-timeout";

/// The request id of the call being served, put in the request's extensions by the
/// service layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The longest request id taken from a caller; a longer one is replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The caller's request id in `headers` when it is one Fabula takes (1 to
/// [`MAX_REQUEST_ID_LEN`] visible ASCII characters: no spaces, which would let it pass
/// for more fields of the log lines it is written in), else a new one. The gateway
/// and the services both take it this way.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .map(|v| v.as_bytes())
        .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN && v.iter().all(u8::is_ascii_graphic))
        .and_then(|v| std::str::from_utf8(v).ok())
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned)
}

/// A `grpc-timeout` value: up to 8 digits and a unit (`H`, `M`, `S`, `m`, `u` or `n`:
/// `100m`, `5S`, `1H`), read as tonic reads it; `None` when it is anything else.
pub fn parse_grpc_timeout(text: &str) -> Option<Duration> {
    let (digits, unit) = text.split_at_checked(text.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    match unit {
        "H" => Some(Duration::from_secs(n * 3600)),
        "M" => Some(Duration::from_secs(n * 60)),
        "S" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_millis(n)),
        "u" => Some(Duration::from_micros(n)),
        "n" => Some(Duration::from_nanos(n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_are_read_as_tonic_reads_them() {
        let cases = [
            ("1m", Some(Duration::from_millis(1))),
            ("30S", Some(Duration::from_secs(30))),
            ("2H", Some(Duration::from_secs(7200))),
            ("5M", Some(Duration::from_secs(300))),
            ("7u", Some(Duration::from_micros(7))),
            ("99999999n", Some(Duration::from_nanos(99_999_999))),
            ("+5S", Some(Duration::from_secs(5))),
            ("123456789S", None),
            ("S", None),
            ("", None),
            ("-1S", None),
            ("5s", None),
            ("10x", None),
            ("1é", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_grpc_timeout(text), want, "{text:?}");
        }
    }

    #[test]
    fn a_request_id_is_taken_when_short_and_readable() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID, http::HeaderValue::from_bytes(value.as_bytes()).unwrap());
            request_id(&headers)
        };
        assert_eq!(with("req-1"), "req-1");
        let longest = "x".repeat(MAX_REQUEST_ID_LEN);
        assert_eq!(with(&longest), longest);
        let replaced = [
            String::new(),
            "x".repeat(MAX_REQUEST_ID_LEN + 1),
            "req-1 2026-12-03T00:00:00Z ERROR forged".into(),
            "req\t1".into(),
            "req-é".into(),
        ];
        for replaced in replaced {
            let made = with(&replaced);
            assert!(Uuid::parse_str(&made).is_ok(), "{replaced:?} is replaced by a new id, not {made:?}");
        }
        assert!(Uuid::parse_str(&request_id(&HeaderMap::new())).is_ok(), "an id is made when there is none");
    }
}
