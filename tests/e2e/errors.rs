//! Bad requests through the gateway, a short table: each is refused with its HTTP
//! status, the Google JSON error shape and a stable reason, and changes nothing. The
//! gateway's own tests hold the depth.

use fabula_testkit::{Backend, both_databases, rest::answer};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::stack;

both_databases!(bad_requests_are_refused_with_a_reason_and_change_nothing);

/// One bad request and how it is refused.
struct Case {
    why: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: &'static str,
    status: StatusCode,
    /// The gRPC status name of the error.
    name: &'static str,
    reason: &'static str,
    /// The field a `BadRequest` detail names, when there is one.
    field: Option<&'static str>,
    /// Words the message holds.
    says: &'static str,
}

const JSON: Option<&str> = Some("application/json");

impl Case {
    fn new(
        why: &'static str,
        method: Method,
        path: &str,
        content_type: Option<&'static str>,
        body: &'static str,
    ) -> Self {
        let path = path.to_owned();
        let (status, name, reason, field, says) = (StatusCode::OK, "", "", None, "");
        Self { why, method, path, content_type, body, status, name, reason, field, says }
    }

    fn refused(self, status: StatusCode, name: &'static str, reason: &'static str, says: &'static str) -> Self {
        Self { status, name, reason, says, ..self }
    }

    /// Refused as INVALID_ARGUMENT naming `field`.
    fn bad_field(self, field: &'static str, says: &'static str) -> Self {
        let refused = self.refused(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "INVALID_ARGUMENT", says);
        Self { field: Some(field), ..refused }
    }
}

async fn bad_requests_are_refused_with_a_reason_and_change_nothing(backend: Backend) {
    let running = stack::start(backend).await;
    let ada = running.rest().register("ada").await;
    let world = ada.api.post("/v1/worlds", json!({"name": "Eldoria"})).await.expect(StatusCode::CREATED, "world");
    let world_path = format!("/v1/worlds/{}", world["id"].as_str().expect("an id"));
    let cases = [
        Case::new("malformed JSON", Method::POST, "/v1/worlds", JSON, "{\"name\": ").refused(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "MALFORMED_JSON",
            "line 1 column",
        ),
        Case::new("an unknown field", Method::POST, "/v1/worlds", JSON, r#"{"name": "W", "colour": 1}"#)
            .bad_field("world.colour", "colour"),
        Case::new("a wrong type", Method::POST, "/v1/worlds", JSON, r#"{"name": 5}"#).bad_field("world.name", "string"),
        Case::new("an unknown enum value", Method::PATCH, &world_path, JSON, r#"{"visibility": "SECRET"}"#)
            .bad_field("world.visibility", "SECRET"),
        Case::new("an empty name", Method::PATCH, &world_path, JSON, r#"{"name": ""}"#).bad_field("world.name", "name"),
        Case::new("a key given twice", Method::POST, "/v1/worlds", JSON, r#"{"name": "W", "name": "V"}"#)
            .bad_field("world.name", "twice"),
        Case::new(
            "a field by both its names",
            Method::PATCH,
            &world_path,
            JSON,
            r#"{"worldType": "OTHER", "world_type": "MODERN"}"#,
        )
        .bad_field("world.worldType", "twice"),
        Case::new("a null field", Method::PATCH, &world_path, JSON, r#"{"name": null}"#)
            .bad_field("world.name", "null"),
        Case::new("a required body left out", Method::PATCH, &world_path, None, "").bad_field("world", "required"),
        Case::new("a page size named as REST names it", Method::GET, "/v1/worlds?page_size=-1", None, "")
            .bad_field("pageSize", "at least 0"),
        Case::new("a bad id in the path", Method::GET, "/v1/worlds/not-an-id", None, "").bad_field("id", "id"),
        Case::new("a bad job id in the path", Method::GET, "/v1/jobs/not-an-id", None, "").bad_field("id", "id"),
        Case::new("a body where none is taken", Method::GET, &world_path, JSON, "{}").refused(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "UNEXPECTED_BODY",
            "no body",
        ),
        Case::new("a wrong method", Method::PUT, "/v1/worlds", JSON, "{}").refused(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNIMPLEMENTED",
            "METHOD_NOT_ALLOWED",
            "method",
        ),
        Case::new("a body that is not JSON", Method::POST, "/v1/worlds", Some("text/plain"), "name=W").refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "INVALID_ARGUMENT",
            "UNSUPPORTED_MEDIA_TYPE",
            "application/json",
        ),
        Case::new("no such route", Method::GET, "/v1/nothing", None, "").refused(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "ROUTE_NOT_FOUND",
            "route",
        ),
    ];

    for case in cases {
        let mut request = ada.api.request(case.method.clone(), &case.path);
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type).body(case.body);
        }
        let refused = answer(request).await;
        refused.expect_error(case.status, case.name, case.reason, case.why);
        let fields: Vec<&str> = refused.body["error"]["details"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["fieldViolations"].as_array())
            .flatten()
            .filter_map(|v| v["field"].as_str())
            .collect();
        assert_eq!(fields, case.field.into_iter().collect::<Vec<_>>(), "{}: {}", case.why, refused.body);
        let message = refused.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(case.says), "{}: {message:?} does not say {:?}", case.why, case.says);
        if case.status == StatusCode::METHOD_NOT_ALLOWED {
            assert_eq!(refused.headers["allow"], "GET, HEAD, POST", "{}: the methods the path takes", case.why);
        }
    }

    let worlds = ada.api.get("/v1/worlds").await.expect(StatusCode::OK, "list");
    assert_eq!(worlds["worlds"].as_array().map(Vec::len), Some(1), "nothing was created: {worlds}");
    let kept = ada.api.get(&world_path).await.expect(StatusCode::OK, "get");
    assert_eq!(kept, world, "nothing was changed");
    running.stop().await;
}
