//! Checks of the errors a service returns: its gRPC code and the `ErrorInfo.reason`
//! every error carries, the fields a `BadRequest` names, and the same over REST in the
//! Google JSON error shape.

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The `ErrorInfo.reason` of `status`, if it has one.
pub fn reason(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|info| info.reason)
}

/// The fields a `BadRequest` of `status` names.
pub fn bad_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The error of `result`, after checking its gRPC code and its `ErrorInfo.reason`:
/// every error a service returns says why in one. `context` says what was tried.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, want: &str, context: &str) -> Status {
    match result {
        Ok(value) => panic!("{context}: expected {code:?} ({want}), got OK: {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{context}: wrong code ({status:?})");
            assert_eq!(reason(&status).as_deref(), Some(want), "{context}: wrong ErrorInfo reason ({status:?})");
            status
        }
    }
}

/// Checks `result` is INVALID_ARGUMENT (reason INVALID_ARGUMENT) with a `BadRequest`
/// naming `field`.
#[track_caller]
pub fn expect_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str, context: &str) -> Status {
    let status = expect_code(result, Code::InvalidArgument, "INVALID_ARGUMENT", context);
    expect_field(&status, field, context);
    status
}

/// Checks `result` is NOT_FOUND (reason REFERENCE_NOT_FOUND) with a `BadRequest`
/// naming `field`: a well-formed id that names nothing the world holds.
#[track_caller]
pub fn expect_missing<T: std::fmt::Debug>(result: Result<T, Status>, field: &str, context: &str) -> Status {
    let status = expect_code(result, Code::NotFound, "REFERENCE_NOT_FOUND", context);
    expect_field(&status, field, context);
    status
}

/// Checks the `BadRequest` of `status` names `field`.
#[track_caller]
pub fn expect_field(status: &Status, field: &str, context: &str) {
    let fields = bad_fields(status);
    assert!(fields.iter().any(|f| f == field), "{context}: BadRequest names {fields:?}, not {field:?} ({status:?})");
}

/// The `ErrorInfo.reason` of an error body in the Google JSON shape, if it has one.
pub fn json_reason(body: &serde_json::Value) -> Option<String> {
    body["error"]["details"]
        .as_array()?
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
        .and_then(|d| d["reason"].as_str())
        .map(str::to_owned)
}

/// Checks an HTTP answer (`status`, `body`) is an error of status `want` in the Google
/// JSON shape, with gRPC status name `name`, a message and the `ErrorInfo.reason`
/// `reason`: what [`expect_code`] checks of a gRPC error, over REST.
#[track_caller]
pub fn expect_json_error(
    status: http::StatusCode,
    body: &serde_json::Value,
    want: http::StatusCode,
    name: &str,
    reason: &str,
    what: &str,
) {
    assert_eq!(status, want, "{what}: {body}");
    let error = &body["error"];
    assert_eq!(error["code"], want.as_u16(), "{what}: {body}");
    assert_eq!(error["status"], name, "{what}: {body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: a message: {body}");
    assert_eq!(json_reason(body).as_deref(), Some(reason), "{what}: wrong ErrorInfo reason: {body}");
}

/// One case of a bad-input table: a request the service refuses with a `BadRequest`
/// naming `field` ([`expect_invalid`], [`expect_missing`]), and `why` it is bad.
#[derive(Debug)]
pub struct BadInput<R> {
    pub request: R,
    pub field: &'static str,
    pub why: &'static str,
}

/// Checks that `status`, the answer to a value far too long, is short (its message and
/// details together at most `most` bytes, whatever the value's length) and that its
/// message `says` what was wrong.
#[track_caller]
pub fn expect_short_answer(status: &Status, most: usize, says: &str, what: &str) {
    let bytes = status.message().len() + status.details().len();
    assert!(bytes <= most, "{what}: {bytes} bytes of message and details: {:?}", status.message());
    assert!(status.message().contains(says), "{what}: {:?} does not say {says:?}", status.message());
}

/// Checks the `BadRequest` of `status` names `field` or a field within it.
#[track_caller]
pub fn expect_field_within(status: &Status, field: &str, what: &str) {
    let fields = bad_fields(status);
    assert!(fields.iter().any(|f| f.starts_with(field)), "{what}: {fields:?} name no {field}");
}
