//! `google.rpc` error details on every `Status`: an `ErrorInfo` with a stable reason,
//! and a `BadRequest` naming each bad field for INVALID_ARGUMENT. Statuses that tonic
//! makes itself get theirs from [`add_missing_details`].
//!
//! An error never grows with what a client sent: values are shown through [`quote`],
//! and every message and field violation is cut to a bound here, so that no status
//! outgrows the response headers that carry it. [`cut_oversize_status`] is the last
//! resort, for a status made some other way.

use std::time::Duration;

use http::HeaderMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The `ErrorInfo.domain` of every Fabula error.
pub const DOMAIN: &str = "fabula.app";

/// How many characters of a client's value an error shows.
pub const QUOTED_CHARS: usize = 64;
/// The most bytes a status's message and details may take in the headers that carry
/// them (the message percent-encoded, up to three bytes a byte; the details in base64,
/// which repeat the message) before [`cut_oversize_status`] replaces them. gRPC's C
/// core (grpcio and the clients built on it) refuses response metadata over 8 KiB at
/// random and all of it over 16 KiB; this leaves 1 KiB of the 8 for other headers.
/// The bounds below keep every status this module makes within it.
pub const MAX_STATUS_BYTES: usize = 7 * 1024;
/// The longest message a status carries, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// The longest description of one field violation, in bytes.
const MAX_DESCRIPTION_BYTES: usize = 512;
/// The longest field path a violation names, in bytes.
const MAX_FIELD_BYTES: usize = 128;
/// The most field violations one status lists; its message counts the rest.
const MAX_VIOLATIONS: usize = 10;
/// The most bytes of field paths and descriptions one status lists; the first
/// violation is listed whatever its size.
const MAX_VIOLATIONS_BYTES: usize = 1536;
/// The longest `ErrorInfo.reason` an oversize status keeps, in bytes.
const MAX_REASON_BYTES: usize = 128;

/// A value a client sent, as an error shows it: quoted and escaped like `{:?}`, and
/// when longer than [`QUOTED_CHARS`] cut to its start and its length in characters
/// (`"aaaa…" (5000 characters)`). Every error that names a client's value goes through it.
pub fn quote(value: &str) -> String {
    match value.char_indices().nth(QUOTED_CHARS) {
        None => format!("{value:?}"),
        Some((end, _)) => format!("{:?}… ({} characters)", &value[..end], value.chars().count()),
    }
}

/// `text` cut to at most `max` bytes on a character boundary, an ellipsis marking the cut.
pub fn bounded(mut text: String, max: usize) -> String {
    const ELLIPSIS: char = '…';
    if text.len() <= max {
        return text;
    }
    let mut end = max - ELLIPSIS.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push(ELLIPSIS);
    text
}

/// A status with an `ErrorInfo` carrying `reason` (stable, UPPER_SNAKE).
pub fn status(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let details = ErrorDetails::with_error_info(reason, DOMAIN, std::collections::HashMap::new());
    Status::with_error_details(code, bounded(message.into(), MAX_MESSAGE_BYTES), details)
}

/// RESOURCE_EXHAUSTED with a `RetryInfo` telling when to try again.
pub fn exhausted(reason: &str, message: impl Into<String>, retry_after: Duration) -> Status {
    let mut details = ErrorDetails::with_error_info(reason, DOMAIN, std::collections::HashMap::new());
    details.set_retry_info(Some(retry_after));
    Status::with_error_details(Code::ResourceExhausted, bounded(message.into(), MAX_MESSAGE_BYTES), details)
}

/// Collects every problem of a request, then fails once naming them all.
#[derive(Debug, Default)]
pub struct FieldViolations(Vec<FieldViolation>);

impl FieldViolations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` (its proto name, dotted for nested fields) is wrong.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        let field = bounded(field.into(), MAX_FIELD_BYTES);
        self.0.push(FieldViolation::new(field, bounded(description.into(), MAX_DESCRIPTION_BYTES)));
    }

    /// Records the error of a parse, if any, and returns its value.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|description| self.add(field, description)).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was recorded, else INVALID_ARGUMENT with a `BadRequest`.
    pub fn finish(self) -> Result<(), Status> {
        self.finish_as(Code::InvalidArgument, "INVALID_ARGUMENT")
    }

    /// `Ok` when nothing was recorded, else NOT_FOUND (reason REFERENCE_NOT_FOUND) with a
    /// `BadRequest` naming each field whose id names nothing the caller may refer to:
    /// the request is well formed, what it refers to is missing.
    pub fn finish_missing(self) -> Result<(), Status> {
        self.finish_as(Code::NotFound, "REFERENCE_NOT_FOUND")
    }

    fn finish_as(self, code: Code, reason: &str) -> Result<(), Status> {
        if self.0.is_empty() {
            return Ok(());
        }
        let mut violations = self.0;
        let listed = listed_within_budget(&violations);
        let left_out = violations.len() - listed;
        violations.truncate(listed);
        let listed =
            violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ");
        let more = if left_out > 0 { format!("; and {left_out} more") } else { String::new() };
        let message = bounded(listed, MAX_MESSAGE_BYTES - more.len()) + &more;
        let mut details = ErrorDetails::with_error_info(reason, DOMAIN, std::collections::HashMap::new());
        details.set_bad_request(violations);
        Err(Status::with_error_details(code, message, details))
    }
}

/// How many of `violations`, from the first, a status lists: at most
/// [`MAX_VIOLATIONS`] and [`MAX_VIOLATIONS_BYTES`], and always the first.
fn listed_within_budget(violations: &[FieldViolation]) -> usize {
    let mut budget = MAX_VIOLATIONS_BYTES;
    let fits = |v: &&FieldViolation| match budget.checked_sub(v.field.len() + v.description.len()) {
        Some(left) => {
            budget = left;
            true
        }
        None => false,
    };
    violations.iter().take(MAX_VIOLATIONS).take_while(fits).count().max(1)
}

/// NOT_FOUND (REFERENCE_NOT_FOUND) naming one field whose id names nothing.
pub fn missing_reference(field: &str, description: impl Into<String>) -> Status {
    let mut missing = FieldViolations::new();
    missing.add(field, description);
    missing.finish_missing().expect_err("one violation was recorded")
}

/// INVALID_ARGUMENT naming one field.
pub fn invalid_field(field: &str, description: impl Into<String>) -> Status {
    let mut violations = FieldViolations::new();
    violations.add(field, description);
    violations.finish().expect_err("one violation was recorded")
}

/// What tonic says when it refuses a call by itself, and the reason each gets: the
/// start of its message, for the code it comes with. These messages are kept as they
/// are; they name no more than the request's own size or wire format.
const TONIC_MESSAGES: &[(Code, &str, &str)] = &[
    (Code::OutOfRange, "Error, decoded message length too large", "MESSAGE_TOO_LARGE"),
    (Code::ResourceExhausted, "Error decompressing: size limit", "MESSAGE_TOO_LARGE"),
    (Code::OutOfRange, "Error, encoded message length too large", "RESPONSE_TOO_LARGE"),
    (Code::ResourceExhausted, "Cannot return body with more than 4GB", "RESPONSE_TOO_LARGE"),
    (Code::Internal, "failed to decode Protobuf message", "MALFORMED_REQUEST"),
    (Code::Internal, "protocol error:", "MALFORMED_REQUEST"),
    (Code::Internal, "Unexpected EOF decoding stream", "MALFORMED_REQUEST"),
    (Code::Internal, "Missing request message", "MALFORMED_REQUEST"),
    (Code::Internal, "Error decompressing:", "MALFORMED_REQUEST"),
    (Code::Unimplemented, "Content is compressed with", "COMPRESSION_UNSUPPORTED"),
];

/// The `ErrorInfo.reason` and message for an error that came without details (made by
/// tonic, not by a Fabula handler): tonic's own reason when its message is one of
/// [`TONIC_MESSAGES`], else the code's name. An unrecognised message of an INTERNAL,
/// UNKNOWN or DATA_LOSS error may hold anything and is replaced; other codes' messages
/// (tonic's, h2's, the health and reflection services') say nothing internal and stay.
fn explain_bare_error(code: Code, message: &str) -> (&'static str, String) {
    if let Some((_, _, reason)) =
        TONIC_MESSAGES.iter().find(|(known, start, _)| *known == code && message.starts_with(start))
    {
        return (reason, message.to_owned());
    }
    let message = match code {
        Code::Internal | Code::Unknown | Code::DataLoss => "internal error".to_owned(),
        _ if message.is_empty() => code.description().to_owned(),
        _ => message.to_owned(),
    };
    (code_name(code), message)
}

/// Gives the gRPC status in `headers` (a response's headers when trailers-only, else
/// its trailers) an `ErrorInfo` when it is an error without details. OK, and errors
/// that have details, cost one or two lookups and are left as they are.
pub fn add_missing_details(headers: &mut HeaderMap) {
    let Some(value) = headers.get(Status::GRPC_STATUS) else {
        return;
    };
    if value.as_bytes() == b"0" || headers.contains_key(Status::GRPC_STATUS_DETAILS) {
        return;
    }
    let code = Code::from_bytes(value.as_bytes());
    let sent = sent_message(headers);
    let (reason, message) = explain_bare_error(code, &sent);
    if message == sent {
        tracing::debug!(?code, reason, kept = ?message, "error details added");
    } else {
        tracing::warn!(?code, reason, replaced = ?sent, "an error's message was replaced");
    }
    headers.remove(Status::GRPC_MESSAGE);
    if let Err(unwritable) = status(code, reason, message).add_header(headers) {
        tracing::warn!(error = %unwritable, "cannot write error details");
    }
}

/// The last resort against a status that outgrows its headers (and fails the whole
/// call at the client as RESOURCE_EXHAUSTED, "metadata size exceeds hard limit"):
/// when the message and details of the status in `headers` take more than
/// [`MAX_STATUS_BYTES`], they are replaced by the message cut to [`MAX_MESSAGE_BYTES`]
/// and an `ErrorInfo` alone, its reason kept, and a warning is logged. Every status
/// made through this module is within bounds already: this only ever catches a bug.
pub fn cut_oversize_status(headers: &mut HeaderMap) {
    let size_of = |name| headers.get(name).map_or(0, |value: &http::HeaderValue| value.len());
    let (message_bytes, details_bytes) = (size_of(Status::GRPC_MESSAGE), size_of(Status::GRPC_STATUS_DETAILS));
    let Some(code) = headers.get(Status::GRPC_STATUS).map(|value| Code::from_bytes(value.as_bytes())) else {
        return;
    };
    if message_bytes + details_bytes <= MAX_STATUS_BYTES {
        return;
    }
    let reason = Status::from_header_map(headers)
        .and_then(|sent| sent.get_details_error_info())
        .filter(|info| info.domain == DOMAIN)
        .map_or_else(|| code_name(code).to_owned(), |info| bounded(info.reason, MAX_REASON_BYTES));
    tracing::warn!(?code, reason, message_bytes, details_bytes, "an oversize error status was cut down");
    let message = sent_message(headers);
    headers.remove(Status::GRPC_MESSAGE);
    headers.remove(Status::GRPC_STATUS_DETAILS);
    if let Err(unwritable) = status(code, &reason, message).add_header(headers) {
        tracing::warn!(error = %unwritable, "cannot write error details");
    }
}

/// The message of the status in `headers`, percent-decoded as tonic does; empty when
/// there is none or it is not UTF-8.
fn sent_message(headers: &HeaderMap) -> String {
    let (Some(code), Some(message)) = (headers.get(Status::GRPC_STATUS), headers.get(Status::GRPC_MESSAGE)) else {
        return String::new();
    };
    let mut alone = HeaderMap::with_capacity(2);
    alone.insert(Status::GRPC_STATUS, code.clone());
    alone.insert(Status::GRPC_MESSAGE, message.clone());
    // A message that is not UTF-8 comes back as UNKNOWN with tonic's complaint instead.
    Status::from_header_map(&alone)
        .filter(|s| s.code() == Code::from_bytes(code.as_bytes()))
        .map(|s| s.message().to_owned())
        .unwrap_or_default()
}

/// The UPPER_SNAKE name of `code`, the reason of an error nothing more is known of.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_clients_value_is_quoted_short_and_escaped() {
        assert_eq!(quote("Eldoria"), "\"Eldoria\"");
        assert_eq!(quote("two\nlines"), "\"two\\nlines\"");
        let long = "é".repeat(100_000);
        assert_eq!(quote(&long), format!("{:?}… (100000 characters)", "é".repeat(QUOTED_CHARS)));
        assert_eq!(bounded("aé".repeat(10), 6), "aé…", "cut on a character boundary");
    }

    #[test]
    fn no_status_grows_with_its_input() {
        let huge = "x".repeat(100_000);
        let plain = status(Code::NotFound, "NOT_FOUND", huge.clone());
        assert_eq!(plain.message().len(), MAX_MESSAGE_BYTES);
        assert!(plain.message().ends_with('…'));
        let mut violations = FieldViolations::new();
        for n in 0..1000 {
            violations.add(format!("{huge}{n}"), huge.clone());
        }
        let status = violations.finish().unwrap_err();
        assert!(status.message().len() <= MAX_MESSAGE_BYTES, "{}", status.message().len());
        assert!(status.message().ends_with("and 998 more"), "{}", status.message());
        let bad = status.get_details_bad_request().expect("a BadRequest");
        assert_eq!(bad.field_violations.len(), 2, "as many as fit in {MAX_VIOLATIONS_BYTES} bytes");
        assert!(bad.field_violations.iter().all(|v| v.field.len() <= MAX_FIELD_BYTES));
        assert!(bad.field_violations.iter().all(|v| v.description.len() <= MAX_DESCRIPTION_BYTES));
        let mut short = FieldViolations::new();
        for n in 0..20 {
            short.add(format!("field_{n}"), "is required");
        }
        let short = short.finish().unwrap_err();
        let listed = short.get_details_bad_request().expect("a BadRequest").field_violations.len();
        assert_eq!(listed, MAX_VIOLATIONS, "short violations are listed up to {MAX_VIOLATIONS}");
    }

    /// The worst a client can make of each kind of status this module writes: the
    /// longest texts, in characters that take the most room once percent-encoded.
    #[test]
    fn the_largest_statuses_fit_within_the_status_bound() {
        for wide in ["𝔄", "é", " ", "\u{1b}"] {
            let huge = wide.repeat(100_000);
            let mut violations = FieldViolations::new();
            for n in 0..1000 {
                violations.add(format!("{huge}{n}"), huge.clone());
            }
            let statuses = [
                violations.finish().unwrap_err(),
                invalid_field(&huge, huge.clone()),
                status(Code::NotFound, &"R".repeat(64), huge.clone()),
                exhausted("LOGIN_THROTTLED", huge.clone(), Duration::from_secs(1)),
            ];
            for status in statuses {
                let bytes = status_bytes(&written(&status));
                assert!(bytes <= MAX_STATUS_BYTES, "{bytes} bytes for {:?} of {wide:?}", status.code());
            }
        }
    }

    /// The headers of a trailers-only response tonic would write for `status`.
    fn written(status: &Status) -> HeaderMap {
        let mut headers = HeaderMap::new();
        status.add_header(&mut headers).expect("a writable status");
        headers
    }

    fn read(headers: &HeaderMap) -> (Code, String, Option<String>) {
        let status = Status::from_header_map(headers).expect("a status");
        let reason = status.get_details_error_info().filter(|info| info.domain == DOMAIN).map(|info| info.reason);
        (status.code(), status.message().to_owned(), reason)
    }

    #[test]
    fn errors_without_details_get_an_error_info() {
        let too_large = "Error, decoded message length too large: found 5242885 bytes, the limit is: 4194304 bytes";
        // (what, status as tonic wrote it, reason, message after)
        let cases = [
            ("a request over the limit", Status::out_of_range(too_large), "MESSAGE_TOO_LARGE", too_large),
            (
                "bytes that are not protobuf",
                Status::internal("failed to decode Protobuf message: invalid varint"),
                "MALFORMED_REQUEST",
                "failed to decode Protobuf message: invalid varint",
            ),
            (
                "an unknown method",
                Status::unimplemented(""),
                "UNIMPLEMENTED",
                "Operation is not implemented or not supported",
            ),
            (
                "a health check of no service",
                Status::not_found("service not registered"),
                "NOT_FOUND",
                "service not registered",
            ),
            (
                "internal text",
                Status::internal("error returned from database: relation \"stories\" does not exist"),
                "INTERNAL",
                "internal error",
            ),
            ("anything unknown", Status::unknown("thread 'main' panicked at src/lib.rs"), "UNKNOWN", "internal error"),
            ("a deadline", Status::deadline_exceeded("Timeout expired"), "DEADLINE_EXCEEDED", "Timeout expired"),
            (
                "a percent-encoded message",
                Status::cancelled("client cancelled: 100% sure"),
                "CANCELLED",
                "client cancelled: 100% sure",
            ),
        ];
        for (what, bare, reason, message) in cases {
            let mut headers = written(&bare);
            add_missing_details(&mut headers);
            assert_eq!(read(&headers), (bare.code(), message.to_owned(), Some(reason.to_owned())), "{what}");
        }
    }

    /// The bytes of the message and details of the status in `headers`.
    fn status_bytes(headers: &HeaderMap) -> usize {
        [Status::GRPC_MESSAGE, Status::GRPC_STATUS_DETAILS].iter().filter_map(|n| headers.get(n)).map(|v| v.len()).sum()
    }

    /// One status as a buggy handler could make it, past this module's bounds.
    struct Oversize {
        what: &'static str,
        status: Status,
        /// The reason its `ErrorInfo` has afterwards.
        reason: &'static str,
    }

    #[test]
    fn an_oversize_status_is_cut_to_a_bounded_message_and_its_reason() {
        let huge = "x".repeat(100_000);
        let info = |reason, domain| ErrorDetails::with_error_info(reason, domain, HashMap::new());
        let mut violations = info("INVALID_ARGUMENT", DOMAIN);
        violations.set_bad_request((0..1000).map(|n| FieldViolation::new(format!("f{n}"), "bad")).collect::<Vec<_>>());
        let cases = [
            Oversize {
                what: "a huge message with an ErrorInfo",
                status: Status::with_error_details(Code::NotFound, huge.clone(), info("NOT_FOUND", DOMAIN)),
                reason: "NOT_FOUND",
            },
            Oversize {
                what: "a short message with a thousand violations",
                status: Status::with_error_details(Code::InvalidArgument, "bad", violations),
                reason: "INVALID_ARGUMENT",
            },
            Oversize {
                what: "a huge message of four-byte characters without details",
                status: Status::failed_precondition("𝔄".repeat(10_000)),
                reason: "FAILED_PRECONDITION",
            },
            Oversize {
                what: "an ErrorInfo of another domain, whose reason is not ours to keep",
                status: Status::with_error_details(Code::Aborted, huge.clone(), info("THEIRS", "example.com")),
                reason: "ABORTED",
            },
            Oversize {
                what: "a huge reason",
                status: Status::with_error_details(Code::Internal, "internal error", info(&huge, DOMAIN)),
                reason: "",
            },
        ];
        for case in cases {
            let mut headers = written(&case.status);
            assert!(status_bytes(&headers) > MAX_STATUS_BYTES, "{}: oversize to begin with", case.what);
            cut_oversize_status(&mut headers);
            assert!(status_bytes(&headers) <= MAX_STATUS_BYTES, "{}: {} bytes left", case.what, status_bytes(&headers));
            let cut = Status::from_header_map(&headers).expect("a status");
            assert_eq!(cut.code(), case.status.code(), "{}", case.what);
            let reason = cut.get_details_error_info().map(|info| info.reason).unwrap_or_default();
            if case.reason.is_empty() {
                assert_eq!(reason.len(), MAX_REASON_BYTES, "{}: the reason is cut", case.what);
            } else {
                assert_eq!(reason, case.reason, "{}", case.what);
            }
            assert!(cut.get_details_bad_request().is_none(), "{}: only an ErrorInfo is left", case.what);
            let kept = cut.message().trim_end_matches('…');
            assert!(case.status.message().starts_with(kept), "{}: the message is cut, not changed", case.what);
        }
    }

    #[test]
    fn a_status_within_bounds_is_not_cut() {
        let mut violations = FieldViolations::new();
        for n in 0..1000 {
            violations.add(format!("{}{n}", "f".repeat(1000)), "é".repeat(1000));
        }
        for status in [Status::ok(""), violations.finish().unwrap_err(), Status::not_found("x".repeat(2000))] {
            let before = written(&status);
            let mut after = before.clone();
            cut_oversize_status(&mut after);
            assert_eq!(after, before, "{status:?}");
        }
    }

    #[test]
    fn ok_and_errors_with_details_are_left_alone() {
        for status in [Status::ok(""), self::status(Code::NotFound, "NOT_FOUND", "world not found")] {
            let before = written(&status);
            let mut after = before.clone();
            add_missing_details(&mut after);
            assert_eq!(after, before, "{status:?}");
        }
        let mut nothing = HeaderMap::new();
        add_missing_details(&mut nothing);
        assert!(nothing.is_empty(), "headers without a status are not a status");
    }
}
