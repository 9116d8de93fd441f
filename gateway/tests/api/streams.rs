//! WatchJob through the gateway: Server-Sent Events from start to end, a resume
//! with `Last-Event-ID`, NDJSON for other clients, and the watch cookie.

use crate::common;

use common::{Backend, RestUser, Stack, both_databases, spawn};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_databases!(
    a_job_is_watched_as_server_sent_events_and_resumed,
    a_browser_watches_with_the_cookie_and_no_token_in_the_url,
    a_disabled_user_gets_no_watch_cookie,
);

/// Starts a paraphrase job of `user` and returns its id.
async fn start_job(stack: &Stack, user: &RestUser) -> String {
    let body = json!({"paraphrase": {"text": "The sea is wide and the night is long."}});
    let created = stack.call(Method::POST, "/v1/jobs", Some(&user.token), Some(body)).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

/// The whole body of a stream that ends.
async fn read_all(request: reqwest::RequestBuilder) -> (StatusCode, String, String) {
    let mut response = request.send().await.expect("the gateway answers");
    let status = response.status();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    let mut text = String::new();
    while let Some(chunk) = response.chunk().await.expect("the stream reads") {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    (status, content_type, text)
}

/// The (id, event, data) of each SSE event of `text`.
fn events(text: &str) -> Vec<(Option<String>, String, Value)> {
    text.split("\n\n")
        .filter(|block| block.lines().any(|l| l.starts_with("data:")))
        .map(|block| {
            let field =
                |name: &str| block.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim_start().to_owned());
            let data = field("data:").unwrap_or_default();
            (field("id:"), field("event:").unwrap_or_default(), serde_json::from_str(&data).unwrap())
        })
        .collect()
}

async fn a_job_is_watched_as_server_sent_events_and_resumed(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register_with_model_access("ada").await;
    let id = start_job(&stack, &ada).await;
    let url = format!("{}/v1/jobs/{id}/watch", stack.base);

    let request = stack.http.get(&url).bearer_auth(&ada.token).header("accept", "text/event-stream");
    let (status, content_type, text) = read_all(request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let all = events(&text);
    assert!(all.len() >= 3, "updates from start to end: {text}");
    for (i, (id, event, data)) in all.iter().enumerate() {
        assert_eq!(event, "update");
        assert_eq!(id.as_deref(), data["seq"].as_str(), "the event id is the seq");
        assert_eq!(data["seq"], (i + 1).to_string(), "numbered from one");
    }
    let last = &all.last().unwrap().2;
    assert_eq!(last["finished"]["state"], "SUCCEEDED", "the stream ends with the finished job: {last}");

    // A browser that reconnects after the second event gets the rest, and nothing twice.
    let request =
        stack.http.get(&url).bearer_auth(&ada.token).header("accept", "text/event-stream").header("last-event-id", "2");
    let (_, _, resumed) = read_all(request).await;
    let resumed = events(&resumed);
    assert_eq!(resumed.len(), all.len() - 2, "resumed after seq 2");
    assert_eq!(resumed[0].0.as_deref(), Some("3"));

    // Without text/event-stream: one JSON object a line.
    let (status, content_type, text) = read_all(stack.http.get(&url).bearer_auth(&ada.token)).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/x-ndjson"));
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), all.len());
    assert_eq!(lines[0]["result"]["seq"], "1");
}

async fn a_browser_watches_with_the_cookie_and_no_token_in_the_url(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register_with_model_access("ada").await;
    let id = start_job(&stack, &ada).await;
    let url = format!("{}/v1/jobs/{id}/watch", stack.base);
    assert_eq!(stack.http.get(&url).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    let set = stack.http.post(format!("{}/v1/auth/watch-cookie", stack.base)).bearer_auth(&ada.token).send().await;
    let set = set.unwrap();
    assert_eq!(set.status(), StatusCode::NO_CONTENT);
    let cookie = set.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/v1/jobs/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    let pair = cookie.split(';').next().unwrap().to_owned();
    let (status, _, text) =
        read_all(stack.http.get(&url).header("cookie", &pair).header("accept", "text/event-stream")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!events(&text).is_empty());
    // The cookie opens streams only.
    let job = stack.http.get(format!("{}/v1/jobs/{id}", stack.base)).header("cookie", &pair).send().await;
    assert_eq!(job.unwrap().status(), StatusCode::UNAUTHORIZED);

    // Signing out removes it.
    let cleared = stack.http.delete(format!("{}/v1/auth/watch-cookie", stack.base)).send().await.unwrap();
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    let cookie = cleared.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("fabula_watch=;") && cookie.contains("Max-Age=0"), "{cookie}");
    assert!(cookie.contains("Path=/v1/jobs/"), "the same path, or the browser keeps the cookie: {cookie}");
}

async fn a_disabled_user_gets_no_watch_cookie(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register("ada").await;
    let admin = stack.rest.admin().await;
    let path = format!("/v1/admin/users/{}", ada.id);
    let disabled = stack.call(Method::PATCH, &path, Some(&admin.token), Some(json!({"disabled": true}))).await;
    assert_eq!(disabled.status, StatusCode::OK, "{:?}", disabled.body);

    let set = stack.http.post(format!("{}/v1/auth/watch-cookie", stack.base)).bearer_auth(&ada.token).send().await;
    let refused = common::Answer::read(set.unwrap()).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(common::reason(&refused.body).as_deref(), Some("USER_DISABLED"), "{:?}", refused.body);
    assert!(refused.headers.get("set-cookie").is_none(), "no cookie: {:?}", refused.headers);
    assert_eq!(refused.headers["www-authenticate"], "Bearer");
}
