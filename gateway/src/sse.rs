//! Server-streaming methods (WatchJob) over HTTP: Server-Sent Events when the client
//! accepts `text/event-stream`, NDJSON otherwise.
//!
//! Each event's id is the update's `seq`; a browser that reconnects sends it back as
//! `Last-Event-ID` and the stream resumes after it (`after_seq`), losing nothing.
//! Comments keep idle streams open. A client that goes away drops the receiver, which
//! ends the task reading the service, which cancels the gRPC stream. A stream has no
//! deadline (a watch lasts as long as its job): `Grpc-Timeout` bounds unary calls only.
//!
//! Browsers cannot put an `Authorization` header on an `EventSource`, and a token in
//! the URL would end up in logs and history. So streams also accept the access token
//! from the `fabula_watch` cookie, which `POST /v1/auth/watch-cookie` (with the usual
//! `Authorization` header) sets: HttpOnly, SameSite=Strict, limited to `/v1/jobs/`,
//! living no longer than the token itself, and only once story-service has confirmed
//! the token (a disabled user gets none). The cookie is honoured on server-streaming
//! routes only, which change nothing, so it opens no door to cross-site writes.

use std::{convert::Infallible, sync::Arc};

use axum::{
    extract::State,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use bytes::Bytes;
use fabula_runtime::{auth::AuthPolicy, metadata::request_id};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use prost_reflect::{DynamicMessage, MessageDescriptor, ReflectMessage, Value};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::Streaming;

use crate::{Gateway, auth::WATCH_COOKIE, errors::ApiError, proxy, routes::Route, transcode};

/// The request field a `Last-Event-ID` resumes after.
const RESUME_FIELD: &str = "after_seq";
/// The response field that numbers updates.
const SEQ_FIELD: &str = "seq";
/// The watch cookie's scope: sent to the streams only, never readable by scripts.
const COOKIE_ATTRIBUTES: &str = "Path=/v1/jobs/; HttpOnly; Secure; SameSite=Strict";
/// The method that confirms a token before it goes into a cookie.
const CONFIRMING_METHOD: &str = "/fabula.accounts.v1.AccountService/GetMe";
/// Messages buffered between the service and a slow client.
const BUFFER: usize = 32;

/// Sets `after_seq` from `Last-Event-ID`, unless the query already did.
pub fn resume(message: &mut DynamicMessage, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get("last-event-id") else { return Ok(()) };
    let Some(field) = message.descriptor().get_field_by_name(RESUME_FIELD) else { return Ok(()) };
    let seq = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::bad_field("Last-Event-ID", "must be the id of an event: a number"))?;
    if !message.has_field(&field) {
        message.set_field(&field, Value::I64(seq));
    }
    Ok(())
}

/// Answers a server-streaming call as SSE or NDJSON. A HEAD request opens the
/// service's stream only to learn whether it would be served (the caller may watch, the
/// job exists), then drops it: the answer has a GET's status and headers and no body,
/// and holds nothing open.
pub async fn respond(
    gateway: &Gateway,
    route: &Route,
    request: tonic::Request<DynamicMessage>,
    parts: &Parts,
) -> Result<Response, ApiError> {
    let stream = gateway.upstreams.server_streaming(route, request).await.map_err(|status| {
        gateway.metrics.upstream_error(&route.name, status.code());
        ApiError::upstream(status, &route.method.input())
    })?;
    let stream = (parts.method != Method::HEAD).then_some(stream);
    let (stop, headers) = (gateway.stop.clone(), &parts.headers);
    if accepts_event_stream(headers) {
        let events = relay(stream, route.method.input(), stop, event_of);
        let keep_alive = KeepAlive::new().interval(gateway.settings.heartbeat).text("heartbeat");
        return Ok(Sse::new(events.map(Ok::<_, Infallible>)).keep_alive(keep_alive).into_response());
    }
    let lines = relay(stream, route.method.input(), stop, ndjson_line);
    let body = axum::body::Body::from_stream(lines.map(Ok::<_, Infallible>));
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// Whether the client asked for `text/event-stream`.
fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.split(';').next().is_some_and(|m| m.trim() == "text/event-stream")))
}

/// A task reading the service's stream (of a method taking `input`) into a channel,
/// each message or error turned into an item by `item`; it stops when the client leaves
/// or the gateway shuts down. Without a stream, the channel is empty and closed.
fn relay<T: Send + 'static>(
    upstream: Option<Streaming<DynamicMessage>>,
    input: MessageDescriptor,
    stop: tokio_util::sync::CancellationToken,
    item: fn(Result<DynamicMessage, ApiError>) -> T,
) -> ReceiverStream<T> {
    let (tx, rx) = mpsc::channel(BUFFER);
    let Some(mut upstream) = upstream else { return ReceiverStream::new(rx) };
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = upstream.message() => next,
                () = tx.closed() => break,
                () = stop.cancelled() => break,
            };
            let (value, last) = match next {
                Ok(Some(message)) => (Ok(message), false),
                Ok(None) => break,
                Err(status) => (Err(ApiError::upstream(status, &input)), true),
            };
            if tx.send(item(value)).await.is_err() || last {
                break;
            }
        }
    });
    ReceiverStream::new(rx)
}

/// One SSE event: `id` the update's seq, `data` its JSON; an error ends the stream
/// with an `error` event holding the error body.
fn event_of(item: Result<DynamicMessage, ApiError>) -> Event {
    match item {
        Ok(message) => {
            let event = Event::default().event("update").data(json_text(&message));
            match message.get_field_by_name(SEQ_FIELD).as_deref() {
                Some(Value::I64(seq)) => event.id(seq.to_string()),
                _ => event,
            }
        }
        Err(error) => Event::default().event("error").data(error.body().to_string()),
    }
}

/// One NDJSON line: `{"result": …}` or `{"error": …}`, as grpc-gateway streams do.
fn ndjson_line(item: Result<DynamicMessage, ApiError>) -> Bytes {
    let mut line = match item {
        Ok(message) => format!("{{\"result\":{}}}", json_text(&message)),
        Err(error) => error.body().to_string(),
    };
    line.push('\n');
    Bytes::from(line)
}

fn json_text(message: &DynamicMessage) -> String {
    transcode::response_json(message).ok().and_then(|j| String::from_utf8(j).ok()).unwrap_or_else(|| "{}".into())
}

/// `DELETE /v1/auth/watch-cookie`: removes the watch cookie, at sign-out.
pub async fn clear_watch_cookie() -> Response {
    let cookie = format!("{WATCH_COOKIE}=; {COOKIE_ATTRIBUTES}; Max-Age=0");
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}

/// `POST /v1/auth/watch-cookie`: puts the caller's access token in the HttpOnly watch
/// cookie, for `EventSource`s, for as long as the token lives.
pub async fn watch_cookie(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    match cookie_for(&gateway, &headers).await {
        Ok(cookie) => (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn cookie_for(gateway: &Gateway, headers: &HeaderMap) -> Result<HeaderValue, ApiError> {
    let token = crate::auth::TokenSource::of(headers, false)?.token();
    gateway.auth.caller(AuthPolicy::User, token)?;
    let token = token.unwrap_or_default();
    confirm_with_story_service(gateway, headers, token).await?;
    // A token within the verifier's leeway past its expiry would make a cookie that
    // lives no time at all: refuse it as expired instead.
    let max_age = gateway.auth.seconds_left(token).filter(|seconds| *seconds > 0).ok_or_else(|| {
        ApiError::new(tonic::Code::Unauthenticated, "the access token has expired").reason("TOKEN_EXPIRED")
    })?;
    let cookie = format!("{WATCH_COOKIE}={token}; {COOKIE_ATTRIBUTES}; Max-Age={max_age}");
    HeaderValue::from_str(&cookie).map_err(|_| ApiError::bad_request("TOKEN_MALFORMED", "the token is malformed"))
}

/// Asks story-service about `token` as any call with it would (GetMe), so that a token
/// it refuses (a disabled user, a revoked session) gets its refusal instead of a cookie.
async fn confirm_with_story_service(gateway: &Gateway, headers: &HeaderMap, token: &str) -> Result<(), ApiError> {
    let route = gateway.table.by_grpc_path(CONFIRMING_METHOD).ok_or_else(|| {
        tracing::error!(method = CONFIRMING_METHOD, "no route to confirm a token with");
        ApiError::new(tonic::Code::Internal, "internal error")
    })?;
    let message = DynamicMessage::new(route.method.input());
    proxy::call_unary(gateway, route, message, headers, Some(token), &request_id(headers)).await.map(drop)
}
