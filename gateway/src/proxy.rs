//! The one handler every REST route goes through: find the route, check the caller,
//! read and transcode the request, call the service, and answer with its JSON (or
//! its error, mapped once in [`crate::errors`]).

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use fabula_runtime::{
    errors,
    metadata::{GRPC_TIMEOUT, REQUEST_ID, TRACEPARENT, parse_grpc_timeout, request_id},
};
use http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use prost_reflect::DynamicMessage;
use tonic::{Code, Status, metadata::MetadataValue};

use crate::{
    Gateway,
    auth::TokenSource,
    errors::ApiError,
    routes::{Found, Route, Segment, Template},
    sse, transcode,
};

/// Time given to a service past the deadline to answer DEADLINE_EXCEEDED itself.
const DEADLINE_GRACE: Duration = Duration::from_millis(200);

/// Serves any REST request that is not one of the gateway's own pages.
pub async fn handle(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let started = std::time::Instant::now();
    let request_id = request_id(request.headers());
    let (parts, body) = request.into_parts();
    let (name, result) = match gateway.table.find(&parts.method, parts.uri.path()) {
        Found::Route(route, vars) => {
            (route.name.as_str(), serve(&gateway, route, &vars, &parts, body, &request_id, peer).await)
        }
        Found::WrongMethod(allow) => ("unmatched", Err(ApiError::method_not_allowed(allow))),
        Found::Nothing => ("unmatched", Err(ApiError::no_route())),
    };
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    gateway.metrics.observe(name, response.status(), started.elapsed());
    response
}

async fn serve(
    gateway: &Gateway,
    route: &Route,
    vars: &[(String, String)],
    parts: &Parts,
    body: Body,
    request_id: &str,
    peer: SocketAddr,
) -> Result<Response, ApiError> {
    let streaming = route.method.is_server_streaming();
    let token = TokenSource::of(&parts.headers, streaming)?.token();
    let caller = gateway.auth.caller(route.policy, token)?;
    gateway.limits.check(route, peer.ip(), &caller)?;
    let body = read_body(route, &parts.headers, body).await?;
    let mut message = transcode::request_message(route, vars, parts.uri.query(), &body)?;
    if streaming {
        sse::resume(&mut message, &parts.headers)?;
        let request = upstream_request(message, &parts.headers, token, request_id, None)?;
        return sse::respond(gateway, route, request, parts).await;
    }
    let response = call_unary(gateway, route, message, &parts.headers, token, request_id).await?;
    success(route, &response)
}

/// Calls the unary method of `route` with `message` as the caller (their token, request
/// id, trace context) within their deadline, and answers with the service's message or
/// its error as the gateway gives it.
pub async fn call_unary(
    gateway: &Gateway,
    route: &Route,
    message: DynamicMessage,
    headers: &HeaderMap,
    token: Option<&str>,
    request_id: &str,
) -> Result<DynamicMessage, ApiError> {
    let deadline = deadline(headers, gateway.settings.default_deadline, gateway.settings.max_deadline)?;
    let request = upstream_request(message, headers, token, request_id, Some(deadline))?;
    let expires = Instant::now() + deadline;
    let call = gateway.upstreams.unary(route, request);
    let response = tokio::time::timeout(deadline + DEADLINE_GRACE, call)
        .await
        .unwrap_or_else(|_| Err(deadline_exceeded()))
        .map_err(|status| if is_expiry(&status, expires) { deadline_exceeded() } else { status })
        .map_err(|status| {
            gateway.metrics.upstream_error(&route.name, status.code());
            ApiError::upstream(status, &route.method.input())
        })?;
    Ok(response.into_inner())
}

/// Whether `status` ended a call because its deadline, `expires`, passed: tonic's client
/// answers its own timeout as CANCELLED ("Timeout expired"), and nothing else cancels
/// a call the gateway is still waiting for.
fn is_expiry(status: &Status, expires: Instant) -> bool {
    status.code() == Code::Cancelled && Instant::now() >= expires
}

/// DEADLINE_EXCEEDED, as grpc-gateway answers a call whose deadline passed: 504.
fn deadline_exceeded() -> Status {
    errors::status(Code::DeadlineExceeded, "DEADLINE_EXCEEDED", "the deadline passed before the service answered")
}

/// The body, at most the route's limit, and JSON when there is one.
async fn read_body(route: &Route, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > route.body_limit) {
        return Err(ApiError::payload_too_large(route.body_limit));
    }
    let bytes = match Limited::new(body, route.body_limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => return Err(ApiError::payload_too_large(route.body_limit)),
        Err(_) => return Err(ApiError::bad_request("BODY_UNREADABLE", "the body could not be read")),
    };
    if !bytes.is_empty() && !is_json(headers) {
        return Err(ApiError::unsupported_media_type());
    }
    Ok(bytes)
}

/// Whether the content type is `application/json` or `application/<x>+json`.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The deadline of a call: the client's `Grpc-Timeout` (at most `max`), else `default`.
fn deadline(headers: &HeaderMap, default: Duration, max: Duration) -> Result<Duration, ApiError> {
    let Some(value) = headers.get(GRPC_TIMEOUT) else { return Ok(default) };
    let parsed = value.to_str().ok().and_then(parse_grpc_timeout);
    parsed
        .map(|d| d.min(max))
        .ok_or_else(|| ApiError::bad_field("Grpc-Timeout", "must be up to 8 digits and a unit: H, M, S, m, u or n"))
}

/// The gRPC request: the message, the caller's token, request id, trace context and deadline.
fn upstream_request(
    message: DynamicMessage,
    headers: &HeaderMap,
    token: Option<&str>,
    request_id: &str,
    deadline: Option<Duration>,
) -> Result<tonic::Request<DynamicMessage>, ApiError> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    if let Some(token) = token {
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| ApiError::new(Code::Unauthenticated, "the token is malformed").reason("TOKEN_MALFORMED"))?;
        metadata.insert("authorization", value);
    }
    if let Ok(value) = MetadataValue::try_from(request_id) {
        metadata.insert(REQUEST_ID, value);
    }
    if let Some(value) = headers.get(TRACEPARENT).and_then(|v| MetadataValue::try_from(v.as_bytes()).ok()) {
        metadata.insert(TRACEPARENT, value);
    }
    if let Some(deadline) = deadline {
        request.set_timeout(deadline);
    }
    Ok(request)
}

/// The answer to a successful call: 204 with nothing, else the JSON and, for a
/// create, the created resource's `Location`.
fn success(route: &Route, message: &DynamicMessage) -> Result<Response, ApiError> {
    if route.success == StatusCode::NO_CONTENT {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let json = transcode::response_json(message).map_err(|error| {
        tracing::error!(%error, route = %route.name, "cannot write a response as JSON");
        ApiError::new(Code::Internal, "internal error")
    })?;
    let mut response = (route.success, [(header::CONTENT_TYPE, "application/json")], json).into_response();
    let location = route.location.as_ref().and_then(|t| render(t, message));
    if let Some(value) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `template` with its variables taken from `message`; `None` when one is missing.
fn render(template: &Template, message: &DynamicMessage) -> Option<String> {
    let mut out = String::new();
    for segment in &template.segments {
        out.push('/');
        match segment {
            Segment::Literal(literal) => out.push_str(literal),
            Segment::Variable(path) => {
                let value = transcode::string_at(message, path).filter(|v| !v.is_empty())?;
                push_escaped(&mut out, &value);
            }
        }
    }
    Some(out)
}

/// What a path segment escapes: all but the unreserved characters (RFC 3986 §2.3).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `value` as a path segment: percent-encoded but for the unreserved characters.
fn push_escaped(out: &mut String, value: &str) {
    out.extend(utf8_percent_encode(value, SEGMENT));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        for bad in ["", "S", "5", "5s", "123456789S", "x5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn json_content_types_are_recognised() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
        ] {
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(is_json(&headers), json, "{value}");
        }
    }
}
