//! Every REST route family through the gateway against the real services: success
//! codes, `Location`, the canonical JSON mapping and the forwarded headers.

use crate::common;

use common::{Stack, spawn};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_routes() {
    let stack = spawn().await;
    let ada = stack.register("ada").await;
    let me = stack.call(Method::GET, "/v1/users/me", Some(&ada.token), None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], "ada");
    assert_eq!(me.body["role"], "USER", "enums by name");
    assert!(me.body["createTime"].as_str().is_some_and(|t| t.ends_with('Z')), "RFC 3339: {:?}", me.body);

    // Both field names in, lowerCamelCase out; the mask in snake_case or lowerCamelCase.
    let path = "/v1/users/me?update_mask=display_name";
    let updated = stack.call(Method::PATCH, path, Some(&ada.token), Some(json!({"display_name": "Ada L."}))).await;
    assert_eq!((updated.status, &updated.body["displayName"]), (StatusCode::OK, &json!("Ada L.")));
    let path = "/v1/users/me?updateMask=displayName";
    let updated = stack.call(Method::PATCH, path, Some(&ada.token), Some(json!({"displayName": "Ada"}))).await;
    assert_eq!(updated.body["displayName"], "Ada");

    let body = json!({"currentPassword": common::PASSWORD, "newPassword": "another good password"});
    let changed = stack.call(Method::POST, "/v1/users/me/password", Some(&ada.token), Some(body)).await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);

    let admin = stack.admin().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worlds_and_shares_routes() {
    let stack = spawn().await;
    let ada = stack.register("ada").await;
    let bob = stack.register("bob").await;
    let created = stack
        .http
        .post(format!("{}/v1/worlds", stack.base))
        .bearer_auth(&ada.token)
        .json(&json!({"name": "Earthsea", "visibility": "PRIVATE"}))
        .send()
        .await
        .unwrap();
    let created = common::answer(created).await;
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

    let patch = format!("/v1/worlds/{id}?updateMask=description");
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

/// Create, get, list, update and delete of one child resource kind of a world.
async fn child_crud(stack: &Stack, token: &str, world: &str, plural: &str, body: serde_json::Value, mask: &str) {
    let created = stack.call(Method::POST, &format!("/v1/worlds/{world}/{plural}"), Some(token), Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{plural}: {:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let location = format!("/v1/{plural}/{id}");
    assert_eq!(created.headers["location"], location.as_str(), "{plural}");
    assert_eq!(stack.call(Method::GET, &location, Some(token), None).await.status, StatusCode::OK, "{plural}");
    let list = stack.call(Method::GET, &format!("/v1/worlds/{world}/{plural}"), Some(token), None).await;
    assert_eq!(list.status, StatusCode::OK, "{plural}");
    let patch = format!("{location}?updateMask={mask}");
    let updated = stack.call(Method::PATCH, &patch, Some(token), Some(json!({mask: "changed"}))).await;
    assert_eq!(updated.status, StatusCode::OK, "{plural}: {:?}", updated.body);
    assert_eq!(updated.body[mask], "changed", "{plural}");
    assert_eq!(stack.call(Method::DELETE, &location, Some(token), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(stack.call(Method::GET, &location, Some(token), None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stories_entities_locations_and_events_routes() {
    let stack = spawn().await;
    let ada = stack.register("ada").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_routes_and_headers() {
    let stack = spawn().await;
    let ada = stack.register("ada").await;
    stack.enable_gpt(&ada).await;
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
    let created = common::answer(created).await;
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
