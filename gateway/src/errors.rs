//! Every error the gateway answers with, in the Google JSON shape
//! `{"error": {"code", "status", "message", "details"}}`, and the one table that maps
//! a gRPC status to HTTP the way grpc-gateway does. A service's error names fields as
//! the REST client does (JSON names), and no message grows with what a client sent.

use std::{error::Error as _, time::Duration};

use axum::response::{IntoResponse, Response};
use fabula_runtime::errors::{MAX_MESSAGE_BYTES, bounded};
use http::{HeaderValue, Method, StatusCode, header};
use prost_reflect::MessageDescriptor;
use serde_json::{Value, json};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::transcode::json_path;

/// The `ErrorInfo.domain` of errors the gateway makes itself.
const DOMAIN: &str = fabula_runtime::errors::DOMAIN;
/// The longest field path a violation names, in bytes (the services' bound).
const MAX_FIELD_BYTES: usize = 128;
/// The longest description of one field violation, in bytes (the services' bound).
const MAX_DESCRIPTION_BYTES: usize = 512;

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
    (StatusCode::from_u16(http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), fabula_runtime::errors::code_name(code))
}

impl ApiError {
    /// An error of `code`, with the HTTP status of the table.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            http: mapping(code).0,
            code,
            message: bounded(message.into(), MAX_MESSAGE_BYTES),
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

    /// 400 with a `BadRequest` naming `field` (its JSON path, or the query parameter or
    /// body key as the client spelled it).
    pub fn bad_field(field: &str, description: impl Into<String>) -> Self {
        let field = bounded(field.to_owned(), MAX_FIELD_BYTES);
        let description = bounded(description.into(), MAX_DESCRIPTION_BYTES);
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

impl ApiError {
    /// The error a service answered a call of a method taking `input` with. Its field
    /// paths (proto names, as gRPC clients know them) are given as REST clients know
    /// them, by JSON names, in its `BadRequest` and in its message.
    pub fn upstream(status: Status, input: &MessageDescriptor) -> Self {
        let details = status.get_error_details();
        let renames: Vec<(&str, String)> = details
            .bad_request()
            .map(|bad| bad.field_violations.iter().map(|v| (v.field.as_str(), json_path(input, &v.field))).collect())
            .unwrap_or_default();
        let retry_after = details.retry_info().and_then(|r| r.retry_delay);
        let message = match status.code() {
            // A transport failure's text names hosts and errors of no use to a client.
            Code::Unavailable if status.source().is_some() => "the service is unavailable, try again".to_owned(),
            _ => renamed(status.message(), &renames),
        };
        Self { details: details_json(&details, &renames), retry_after, ..Self::new(status.code(), message) }
    }
}

/// `message` with each of its `; `-separated parts that starts `<field>: ` naming the
/// field by its new name, as `renames` (old, new) has it.
fn renamed(message: &str, renames: &[(&str, String)]) -> String {
    if renames.iter().all(|(old, new)| old == new) {
        return message.to_owned();
    }
    let part_renamed = |part: &str| {
        renames
            .iter()
            .find_map(|(old, new)| {
                part.strip_prefix(old).filter(|rest| rest.starts_with(": ")).map(|rest| new.clone() + rest)
            })
            .unwrap_or_else(|| part.to_owned())
    };
    message.split("; ").map(part_renamed).collect::<Vec<_>>().join("; ")
}

/// The details of a status as JSON, each with its `@type`, fields named as `renames`
/// says and every field and description bounded.
fn details_json(details: &ErrorDetails, renames: &[(&str, String)]) -> Vec<Value> {
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
        let violation = |(v, (_, field)): (&tonic_types::FieldViolation, &(&str, String))| {
            json!({
                "field": bounded(field.clone(), MAX_FIELD_BYTES),
                "description": bounded(v.description.clone(), MAX_DESCRIPTION_BYTES),
            })
        };
        let violations: Vec<Value> = bad.field_violations.iter().zip(renames).map(violation).collect();
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
    use prost_reflect::DescriptorPool;

    use super::*;

    fn input(name: &str) -> MessageDescriptor {
        let pool = DescriptorPool::decode(fabula_contracts::FILE_DESCRIPTOR_SET).unwrap();
        pool.get_message_by_name(name).unwrap()
    }

    fn upstream(status: Status) -> ApiError {
        ApiError::upstream(status, &input("fabula.story.v1.UpdateStoryRequest"))
    }

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
            let response = upstream(Status::new(code, "x")).into_response();
            assert_eq!(response.status().as_u16(), http, "{code:?}");
            let challenge = response.headers().get(header::WWW_AUTHENTICATE);
            assert_eq!(challenge.is_some(), code == Code::Unauthenticated, "{code:?}");
        }
    }

    #[test]
    fn details_survive_the_trip_to_json() {
        let mut details = ErrorDetails::with_error_info("QUOTA", DOMAIN, std::collections::HashMap::new());
        details.set_retry_info(Some(Duration::from_millis(1500)));
        let error = upstream(Status::with_error_details(Code::ResourceExhausted, "slow", details));
        assert_eq!(error.http, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error.retry_after, Some(Duration::from_millis(1500)));
        let body = error.body();
        assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
        assert_eq!(body["error"]["details"][0]["reason"], "QUOTA");
        assert_eq!(body["error"]["details"][1]["retryDelay"], "1.5s");
        let response = error.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn a_services_field_paths_reach_rest_clients_in_json_names() {
        let mut violations = fabula_runtime::errors::FieldViolations::new();
        violations.add("story.entity_ids", "\"x\" is no id");
        violations.add("update_mask", "\"colour\" cannot be updated; the fields that can are title");
        violations.add("story.title", "must not be empty");
        let status = violations.finish().unwrap_err();
        let body = upstream(status).body();
        let message = body["error"]["message"].as_str().unwrap();
        assert_eq!(
            message,
            "story.entityIds: \"x\" is no id; updateMask: \"colour\" cannot be updated; \
             the fields that can are title; story.title: must not be empty"
        );
        let fields: Vec<&str> = body["error"]["details"][1]["fieldViolations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["story.entityIds", "updateMask", "story.title"]);
    }

    #[test]
    fn no_error_grows_with_what_a_service_or_a_client_sent() {
        let huge = "x".repeat(100_000);
        let from_a_service = upstream(Status::invalid_argument(huge.clone()));
        assert_eq!(from_a_service.message.len(), MAX_MESSAGE_BYTES);
        let mut details = ErrorDetails::new();
        details.set_bad_request(vec![tonic_types::FieldViolation::new(huge.clone(), huge.clone())]);
        let body = upstream(Status::with_error_details(Code::InvalidArgument, "bad", details)).body();
        assert!(body.to_string().len() < 2048, "{} bytes", body.to_string().len());
        let own = ApiError::bad_field(&huge, huge.clone()).body();
        assert!(own.to_string().len() < 2048, "{} bytes", own.to_string().len());
    }
}
