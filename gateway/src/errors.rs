//! Every error the gateway answers with, in the Google JSON shape
//! `{"error": {"code", "status", "message", "details"}}`, and the one table that maps
//! a gRPC status to HTTP the way grpc-gateway does.

use std::{error::Error as _, time::Duration};

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of errors the gateway makes itself.
const DOMAIN: &str = fabula_proto::errors::DOMAIN;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub http: StatusCode,
    pub code: Code,
    pub message: String,
    pub details: Vec<Value>,
    pub retry_after: Option<Duration>,
    pub allow: Vec<Method>,
}

/// The one table: a gRPC code's HTTP status, and its name (the shared one).
pub fn mapping(code: Code) -> (StatusCode, &'static str) {
    let http = match code {
        Code::Ok => 200,
        Code::Cancelled => 499,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::ResourceExhausted => 429,
        Code::Unknown | Code::Internal | Code::DataLoss => 500,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::DeadlineExceeded => 504,
    };
    (StatusCode::from_u16(http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), fabula_proto::errors::code_name(code))
}

impl ApiError {
    /// An error of `code`, with the HTTP status of the table.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            http: mapping(code).0,
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
            allow: Vec::new(),
        }
    }

    /// Adds an `ErrorInfo` with `reason`.
    pub fn reason(mut self, reason: &str) -> Self {
        self.details.push(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": DOMAIN,
        }));
        self
    }

    /// 400 with a `BadRequest` naming `field` (its proto path, or the query parameter).
    pub fn bad_field(field: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        let mut error = Self::new(Code::InvalidArgument, format!("{field}: {description}")).reason("INVALID_ARGUMENT");
        error.details.push(json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": field, "description": description}],
        }));
        error
    }

    /// 400 for a request that is wrong as a whole (malformed JSON).
    pub fn bad_request(reason: &str, message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message).reason(reason)
    }

    /// An error of `code` answered with another HTTP status than the table's.
    fn with_http(code: Code, http: StatusCode, reason: &str, message: impl Into<String>) -> Self {
        Self { http, ..Self::new(code, message).reason(reason) }
    }

    pub fn unsupported_media_type() -> Self {
        Self::with_http(
            Code::InvalidArgument,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the body as application/json",
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::with_http(
            Code::ResourceExhausted,
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
            format!("the body is over the limit of {limit} bytes"),
        )
    }

    pub fn method_not_allowed(allow: Vec<Method>) -> Self {
        let error = Self::with_http(
            Code::Unimplemented,
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "this path does not take this method",
        );
        Self { allow, ..error }
    }

    pub fn no_route() -> Self {
        Self::new(Code::NotFound, "no such route").reason("ROUTE_NOT_FOUND")
    }

    /// 429 telling when to come back.
    pub fn rate_limited(retry_after: Duration) -> Self {
        let error = Self::new(Code::ResourceExhausted, "too many requests: slow down").reason("RATE_LIMITED");
        Self { retry_after: Some(retry_after), ..error }
    }

    /// The error body.
    pub fn body(&self) -> Value {
        json!({"error": {
            "code": self.http.as_u16(),
            "status": mapping(self.code).1,
            "message": self.message,
            "details": self.details,
        }})
    }
}

impl From<Status> for ApiError {
    fn from(status: Status) -> Self {
        let details = status.get_error_details();
        let retry_after = details.retry_info().and_then(|r| r.retry_delay);
        let message = match status.code() {
            // A transport failure's text names hosts and errors of no use to a client.
            Code::Unavailable if status.source().is_some() => "the service is unavailable, try again".to_owned(),
            _ => status.message().to_owned(),
        };
        Self { details: details_json(&details), retry_after, ..Self::new(status.code(), message) }
    }
}

/// The details of a status as JSON, each with its `@type`.
fn details_json(details: &ErrorDetails) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(info) = details.error_info() {
        out.push(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": info.reason,
            "domain": info.domain,
            "metadata": info.metadata,
        }));
    }
    if let Some(bad) = details.bad_request() {
        let violations: Vec<Value> =
            bad.field_violations.iter().map(|v| json!({"field": v.field, "description": v.description})).collect();
        out.push(json!({"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}));
    }
    if let Some(delay) = details.retry_info().and_then(|r| r.retry_delay) {
        out.push(json!({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format!("{}s", delay.as_secs_f64()),
        }));
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.http, [(header::CONTENT_TYPE, "application/json")], self.body().to_string()).into_response();
        let headers = response.headers_mut();
        if self.code == Code::Unauthenticated {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(after) = self.retry_after {
            let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if !self.allow.is_empty() {
            let allow = self.allow.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
            if let Ok(value) = HeaderValue::from_str(&allow) {
                headers.insert(header::ALLOW, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_as_grpc_gateway_does() {
        let table = [
            (Code::Cancelled, 499),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 400),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
            (Code::Unauthenticated, 401),
        ];
        for (code, http) in table {
            let response = ApiError::from(Status::new(code, "x")).into_response();
            assert_eq!(response.status().as_u16(), http, "{code:?}");
            let challenge = response.headers().get(header::WWW_AUTHENTICATE);
            assert_eq!(challenge.is_some(), code == Code::Unauthenticated, "{code:?}");
        }
    }

    #[test]
    fn details_survive_the_trip_to_json() {
        let mut details = ErrorDetails::with_error_info("QUOTA", DOMAIN, std::collections::HashMap::new());
        details.set_retry_info(Some(Duration::from_millis(1500)));
        let error = ApiError::from(Status::with_error_details(Code::ResourceExhausted, "slow", details));
        assert_eq!(error.http, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error.retry_after, Some(Duration::from_millis(1500)));
        let body = error.body();
        assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
        assert_eq!(body["error"]["details"][0]["reason"], "QUOTA");
        assert_eq!(body["error"]["details"][1]["retryDelay"], "1.5s");
        let response = error.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }
}
