//! Every REST route family through the gateway against the real services: success
//! codes, `Location`, the canonical JSON mapping and the forwarded headers.

use crate::common;

use common::{Backend, Stack, both_databases, spawn};
use reqwest::{Method, StatusCode};
use serde_json::json;

both_databases!(
    accounts_routes,
    worlds_and_shares_routes,
    invitations_routes,
    stories_entities_locations_and_events_routes,
    jobs_routes_and_headers,
    head_answers_every_get_route_as_get_does_without_a_body,
    a_wrong_method_lists_head_beside_get,
    an_update_changes_exactly_the_fields_its_body_holds,
);

async fn accounts_routes(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register("ada").await;
    let me = stack.call(Method::GET, "/v1/users/me", Some(&ada.token), None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], "ada");
    assert_eq!(me.body["role"], "USER", "enums by name");
    assert!(me.body["createTime"].as_str().is_some_and(|t| t.ends_with('Z')), "RFC 3339: {:?}", me.body);

    // Both field names in, lowerCamelCase out.
    let path = "/v1/users/me";
    let updated = stack.call(Method::PATCH, path, Some(&ada.token), Some(json!({"display_name": "Ada L."}))).await;
    assert_eq!((updated.status, &updated.body["displayName"]), (StatusCode::OK, &json!("Ada L.")));
    let updated = stack.call(Method::PATCH, path, Some(&ada.token), Some(json!({"displayName": "Ada"}))).await;
    assert_eq!(updated.body["displayName"], "Ada");

    let body = json!({"currentPassword": common::PASSWORD, "newPassword": "another good password"});
    let changed = stack.call(Method::POST, "/v1/users/me/password", Some(&ada.token), Some(body)).await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);

    let admin = stack.rest.admin().await;
    let users = stack.call(Method::GET, "/v1/admin/users?pageSize=10", Some(&admin.token), None).await;
    assert_eq!(users.status, StatusCode::OK);
    assert!(users.body["users"].as_array().is_some_and(|u| u.len() >= 2));
    assert!(users.body["totalSize"].is_number(), "int32 stays a number");

    let login = json!({"login": "ada", "password": "another good password"});
    let signed_in = stack.call(Method::POST, "/v1/auth/login", None, Some(login)).await;
    assert_eq!(signed_in.status, StatusCode::OK);
    assert!(signed_in.body["expiresIn"].is_string(), "int64 as a string: {:?}", signed_in.body);
    let refresh = signed_in.body["refreshToken"].clone();
    let refreshed = stack.call(Method::POST, "/v1/auth/refresh", None, Some(json!({"refreshToken": refresh}))).await;
    assert_eq!(refreshed.status, StatusCode::OK);
    let refresh = refreshed.body["refreshToken"].clone();
    let out = stack.call(Method::POST, "/v1/auth/logout", None, Some(json!({"refreshToken": refresh}))).await;
    assert_eq!(out.status, StatusCode::OK, "{:?}", out.body);
}

async fn worlds_and_shares_routes(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register("ada").await;
    let bob = stack.rest.register("bob").await;
    let created = stack
        .http
        .post(format!("{}/v1/worlds", stack.base))
        .bearer_auth(&ada.token)
        .json(&json!({"name": "Earthsea", "visibility": "PRIVATE"}))
        .send()
        .await
        .unwrap();
    let created = common::Answer::read(created).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.headers["location"], format!("/v1/worlds/{id}").as_str());

    let got = stack.call(Method::GET, &format!("/v1/worlds/{id}"), Some(&ada.token), None).await;
    assert_eq!((got.status, &got.body["name"]), (StatusCode::OK, &json!("Earthsea")));
    let anonymous = stack.call(Method::GET, &format!("/v1/worlds/{id}"), None, None).await;
    assert_eq!(anonymous.status, StatusCode::NOT_FOUND, "a private world is hidden");

    let list =
        stack.call(Method::GET, "/v1/worlds?filter=visibility%20%3D%20%22PRIVATE%22", Some(&ada.token), None).await;
    assert_eq!(list.body["worlds"][0]["id"], id.as_str());

    let patch = format!("/v1/worlds/{id}");
    let updated = stack.call(Method::PATCH, &patch, Some(&ada.token), Some(json!({"description": "Isles"}))).await;
    assert_eq!((updated.status, &updated.body["description"]), (StatusCode::OK, &json!("Isles")));

    let share = json!({"user": bob.id, "role": "READER"});
    let shared = stack.call(Method::POST, &format!("/v1/worlds/{id}/shares"), Some(&ada.token), Some(share)).await;
    assert_eq!(shared.status, StatusCode::OK, "ShareWorld is no Create: {:?}", shared.body);
    let shares = stack.call(Method::GET, &format!("/v1/worlds/{id}/shares"), Some(&ada.token), None).await;
    assert_eq!(shares.body["shares"][0]["role"], "READER");
    let unshare = format!("/v1/worlds/{id}/shares/{}", bob.id);
    assert_eq!(stack.call(Method::DELETE, &unshare, Some(&ada.token), None).await.status, StatusCode::NO_CONTENT);

    let deleted = stack.call(Method::DELETE, &format!("/v1/worlds/{id}"), Some(&ada.token), None).await;
    assert_eq!((deleted.status, deleted.body), (StatusCode::NO_CONTENT, serde_json::Value::Null));
}

async fn invitations_routes(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register("ada").await;
    let bob = stack.rest.register("bob").await;
    let world = stack.create_world(&ada, "Earthsea").await;
    let invitations = format!("/v1/worlds/{}/invitations", world["id"].as_str().unwrap());

    let body = json!({"username": "bob", "role": "CO_AUTHOR", "message": "Write with me"});
    let sent = stack.call(Method::POST, &invitations, Some(&ada.token), Some(body)).await;
    assert_eq!(sent.status, StatusCode::OK, "an invitation may update a pending one: {:?}", sent.body);
    assert_eq!((&sent.body["username"], &sent.body["state"]), (&json!("bob"), &json!("PENDING")));
    let id = sent.body["id"].as_str().unwrap().to_owned();
    let listed = stack.call(Method::GET, &invitations, Some(&ada.token), None).await;
    assert_eq!(listed.body["invitations"][0]["id"], id.as_str());
    let mine = stack.call(Method::GET, "/v1/invitations", Some(&bob.token), None).await;
    assert_eq!(mine.body["invitations"][0]["message"], "Write with me");

    let accept = format!("/v1/invitations/{id}/accept");
    let accepted = stack.call(Method::POST, &accept, Some(&bob.token), Some(json!({}))).await;
    assert_eq!(accepted.status, StatusCode::OK, "{:?}", accepted.body);
    assert_eq!(
        (&accepted.body["share"]["role"], &accepted.body["invitation"]["state"]),
        (&json!("CO_AUTHOR"), &json!("ACCEPTED"))
    );
    let again = stack.call(Method::POST, &accept, Some(&bob.token), Some(json!({}))).await;
    fabula_testkit::expect_json_error(
        again.status,
        &again.body,
        StatusCode::BAD_REQUEST,
        "FAILED_PRECONDITION",
        "INVITATION_ACCEPTED",
        "a second accept",
    );

    let by_email = json!({"email": "someone@example.test", "role": "READER"});
    let sent = stack.call(Method::POST, &invitations, Some(&ada.token), Some(by_email)).await;
    assert_eq!(sent.body["email"], "someone@example.test");
    let revoke = format!("/v1/invitations/{}/revoke", sent.body["id"].as_str().unwrap());
    let revoked = stack.call(Method::POST, &revoke, Some(&ada.token), Some(json!({}))).await;
    assert_eq!((revoked.status, &revoked.body["state"]), (StatusCode::OK, &json!("REVOKED")));
    let decline = format!("/v1/invitations/{}/decline", sent.body["id"].as_str().unwrap());
    let declined = stack.call(Method::POST, &decline, Some(&bob.token), Some(json!({}))).await;
    assert_eq!(declined.status, StatusCode::NOT_FOUND, "not bob's: {:?}", declined.body);
}

/// Create, get, list, update and delete of one child resource kind of a world.
async fn child_crud(stack: &Stack, token: &str, world: &str, plural: &str, body: serde_json::Value, field: &str) {
    let created = stack.call(Method::POST, &format!("/v1/worlds/{world}/{plural}"), Some(token), Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{plural}: {:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let location = format!("/v1/{plural}/{id}");
    assert_eq!(created.headers["location"], location.as_str(), "{plural}");
    assert_eq!(stack.call(Method::GET, &location, Some(token), None).await.status, StatusCode::OK, "{plural}");
    let list = stack.call(Method::GET, &format!("/v1/worlds/{world}/{plural}"), Some(token), None).await;
    assert_eq!(list.status, StatusCode::OK, "{plural}");
    let updated = stack.call(Method::PATCH, &location, Some(token), Some(json!({field: "changed"}))).await;
    assert_eq!(updated.status, StatusCode::OK, "{plural}: {:?}", updated.body);
    assert_eq!(updated.body[field], "changed", "{plural}");
    assert_eq!(stack.call(Method::DELETE, &location, Some(token), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(stack.call(Method::GET, &location, Some(token), None).await.status, StatusCode::NOT_FOUND);
}

async fn stories_entities_locations_and_events_routes(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register("ada").await;
    let world = stack.create_world(&ada, "Earthsea").await["id"].as_str().unwrap().to_owned();
    child_crud(&stack, &ada.token, &world, "stories", json!({"title": "One", "content": "Once"}), "title").await;
    child_crud(&stack, &ada.token, &world, "entities", json!({"name": "Ged"}), "name").await;
    child_crud(&stack, &ada.token, &world, "locations", json!({"name": "Roke"}), "name").await;
    child_crud(&stack, &ada.token, &world, "events", json!({"title": "War"}), "title").await;

    let first = stack
        .call(Method::POST, &format!("/v1/worlds/{world}/stories"), Some(&ada.token), Some(json!({"title": "A"})))
        .await;
    let second = stack
        .call(Method::POST, &format!("/v1/worlds/{world}/stories"), Some(&ada.token), Some(json!({"title": "B"})))
        .await;
    let neighbors = format!("/v1/stories/{}/neighbors", second.body["id"].as_str().unwrap());
    let neighbors = stack.call(Method::GET, &neighbors, Some(&ada.token), None).await;
    assert_eq!(neighbors.body["previous"]["id"], first.body["id"]);
    let timeline = stack.call(Method::GET, &format!("/v1/worlds/{world}/timeline"), Some(&ada.token), None).await;
    assert_eq!(timeline.status, StatusCode::OK, "{:?}", timeline.body);
}

async fn jobs_routes_and_headers(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register_with_model_access("ada").await;
    let created = stack
        .http
        .post(format!("{}/v1/jobs", stack.base))
        .bearer_auth(&ada.token)
        .header("x-request-id", "req-123")
        .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .json(&json!({"paraphrase": {"text": "The sea is wide.", "mode": "formal"}}))
        .send()
        .await
        .unwrap();
    let created = common::Answer::read(created).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:?}", created.body);
    assert_eq!(created.headers["x-request-id"], "req-123", "the request id is echoed");
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.headers["location"], format!("/v1/jobs/{id}").as_str());

    let waited = stack.call(Method::GET, &format!("/v1/jobs/{id}/wait?timeout=20s"), Some(&ada.token), None).await;
    assert_eq!((waited.status, &waited.body["state"]), (StatusCode::OK, &json!("SUCCEEDED")), "{:?}", waited.body);
    let got = stack.call(Method::GET, &format!("/v1/jobs/{id}"), Some(&ada.token), None).await;
    assert!(got.headers["x-request-id"].len() >= 32, "a request id is made when absent");
    let list = stack.call(Method::GET, "/v1/jobs?filter=kind%20%3D%20%22paraphrase%22", Some(&ada.token), None).await;
    assert_eq!(list.body["jobs"][0]["id"], id.as_str(), "{:?}", list.body);
    let cancel = stack.call(Method::POST, &format!("/v1/jobs/{id}/cancel"), Some(&ada.token), None).await;
    assert_eq!(cancel.status, StatusCode::OK, "cancelling a finished job changes nothing: {:?}", cancel.body);
    let deleted = stack.call(Method::DELETE, &format!("/v1/jobs/{id}"), Some(&ada.token), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
}

/// A path asked for with HEAD, and how (`accept`, the token).
struct HeadCase {
    why: &'static str,
    path: String,
    accept: &'static str,
    signed_in: bool,
}

impl HeadCase {
    fn new(why: &'static str, path: impl Into<String>) -> Self {
        Self { why, path: path.into(), accept: "*/*", signed_in: true }
    }

    fn anonymous(self) -> Self {
        Self { signed_in: false, ..self }
    }

    fn accepting(self, accept: &'static str) -> Self {
        Self { accept, ..self }
    }
}

async fn head_answers_every_get_route_as_get_does_without_a_body(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register("ada").await;
    let world = stack.create_world(&ada, "Earthsea").await["id"].as_str().unwrap().to_owned();
    stack.rest.grant_model_access(&ada).await;
    let body = json!({"paraphrase": {"text": "The sea is wide."}});
    let job = stack.call(Method::POST, "/v1/jobs", Some(&ada.token), Some(body)).await.body["id"].clone();
    let job = job.as_str().unwrap().to_owned();
    let cases = [
        HeadCase::new("a list", "/v1/worlds"),
        HeadCase::new("a resource", format!("/v1/worlds/{world}")),
        HeadCase::new("a resource hidden from the anonymous", format!("/v1/worlds/{world}")).anonymous(),
        HeadCase::new("a missing resource", "/v1/worlds/0190f1f0-0000-7000-8000-000000000000"),
        HeadCase::new("a route that needs a token", "/v1/users/me").anonymous(),
        HeadCase::new("a bad query", "/v1/worlds?colour=red"),
        HeadCase::new("a watch, as events", format!("/v1/jobs/{job}/watch")).accepting("text/event-stream"),
        HeadCase::new("a watch, as NDJSON", format!("/v1/jobs/{job}/watch")),
        HeadCase::new("a watch of no job", "/v1/jobs/0190f1f0-0000-7000-8000-000000000000/watch"),
        HeadCase::new("the OpenAPI document", "/openapi.json"),
        HeadCase::new("the API reference", "/docs"),
        HeadCase::new("liveness", "/healthz"),
        HeadCase::new("readiness", "/readyz"),
        HeadCase::new("metrics", "/metrics"),
        HeadCase::new("the web page", "/"),
        HeadCase::new("a file of the web page", "/assets/app.js"),
    ];
    for case in cases {
        let request = |method| {
            let request = stack.http.request(method, format!("{}{}", stack.base, case.path));
            let request = request.header("accept", case.accept);
            if case.signed_in { request.bearer_auth(&ada.token) } else { request }
        };
        let get = request(Method::GET).send().await.unwrap();
        let head = request(Method::HEAD).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "{}: the status of GET", case.why);
        assert_eq!(head.headers().get("content-type"), get.headers().get("content-type"), "{}", case.why);
        if case.path.starts_with("/assets/") || case.path == "/openapi.json" {
            assert_eq!(head.headers().get("content-length"), get.headers().get("content-length"), "{}", case.why);
        }
        assert!(head.bytes().await.unwrap().is_empty(), "{}: no body", case.why);
    }
}

/// A method a path does not take, and the methods it does.
struct AllowCase {
    method: Method,
    path: &'static str,
    allow: &'static str,
}

async fn a_wrong_method_lists_head_beside_get(backend: Backend) {
    let stack = spawn(backend).await;
    let cases = [
        AllowCase { method: Method::PUT, path: "/v1/worlds", allow: "GET, HEAD, POST" },
        AllowCase { method: Method::POST, path: "/v1/users/me", allow: "GET, HEAD, PATCH" },
        AllowCase { method: Method::HEAD, path: "/v1/auth/login", allow: "POST" },
        AllowCase { method: Method::GET, path: "/v1/auth/login", allow: "POST" },
    ];
    for case in cases {
        let answer = stack.call(case.method.clone(), case.path, None, None).await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{} {}", case.method, case.path);
        assert_eq!(answer.headers["allow"], case.allow, "{} {}", case.method, case.path);
    }
}

/// An update sent over REST, and what the resource holds after it.
struct Patch {
    why: &'static str,
    body: serde_json::Value,
    status: StatusCode,
    /// The fields the location holds after it, when it passed.
    after: serde_json::Value,
}

async fn an_update_changes_exactly_the_fields_its_body_holds(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register("ada").await;
    let world = stack.create_world(&ada, "Earthsea").await["id"].as_str().unwrap().to_owned();
    let place = json!({"name": "Roke", "description": "The school", "coordinates": {"x": 1.5, "y": 2.0}});
    let created =
        stack.call(Method::POST, &format!("/v1/worlds/{world}/locations"), Some(&ada.token), Some(place)).await;
    let path = format!("/v1/locations/{}", created.body["id"].as_str().unwrap());
    #[rustfmt::skip]
    let cases = [
        Patch { why: "one field", body: json!({"description": "Isle of the Wise"}), status: StatusCode::OK,
                after: json!({"name": "Roke", "description": "Isle of the Wise", "coordinates": {"x": 1.5, "y": 2.0}}) },
        Patch { why: "an empty text clears it", body: json!({"description": ""}), status: StatusCode::OK,
                after: json!({"name": "Roke", "coordinates": {"x": 1.5, "y": 2.0}}) },
        Patch { why: "null takes it off the map", body: json!({"coordinates": null}), status: StatusCode::OK,
                after: json!({"name": "Roke"}) },
        Patch { why: "a required field cannot be emptied", body: json!({"name": ""}), status: StatusCode::BAD_REQUEST,
                after: json!({"name": "Roke"}) },
        Patch { why: "null for a text is refused", body: json!({"description": null}), status: StatusCode::BAD_REQUEST,
                after: json!({"name": "Roke"}) },
        Patch { why: "output-only fields are no change", body: json!({"name": "Roke Knoll", "createTime": "2020-01-01T00:00:00Z"}),
                status: StatusCode::OK, after: json!({"name": "Roke Knoll"}) },
    ];
    for case in cases {
        let answer = stack.call(Method::PATCH, &path, Some(&ada.token), Some(case.body.clone())).await;
        assert_eq!(answer.status, case.status, "{}: {:?}", case.why, answer.body);
        let now = stack.call(Method::GET, &path, Some(&ada.token), None).await.body;
        let held =
            json!({"name": now["name"], "description": now.get("description"), "coordinates": now.get("coordinates")});
        let want = json!({
            "name": case.after["name"],
            "description": case.after.get("description"),
            "coordinates": case.after.get("coordinates"),
        });
        assert_eq!(held, want, "{}", case.why);
    }
    let masked = stack
        .call(Method::PATCH, &format!("{path}?updateMask=name"), Some(&ada.token), Some(json!({"name": "X"})))
        .await;
    assert_eq!(masked.status, StatusCode::BAD_REQUEST, "a mask is not a REST parameter: {:?}", masked.body);
    assert!(
        masked.body["error"]["message"].as_str().unwrap().contains("the fields its body holds"),
        "{:?}",
        masked.body
    );
}
