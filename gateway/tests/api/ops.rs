//! Operations: health, readiness, metrics; an upstream that is down (503, then
//! recovery by itself); CORS preflight; rate limits.

use crate::common;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use common::{Backend, both_databases};
use fabula_contracts::pb::story::Visibility;
use fabula_testkit::{Gateway, StoryService, TestDatabase};
use reqwest::{Method, StatusCode};
use serde_json::json;

both_databases!(
    health_readiness_and_metrics,
    an_upstream_that_is_down_is_503_and_recovers_by_itself,
    rate_limits_answer_429_with_retry_after,
    replicas_are_balanced_and_one_going_down_fails_no_request,
);

async fn health_readiness_and_metrics(backend: Backend) {
    let stack = common::spawn(backend).await;
    assert_eq!(stack.call(Method::GET, "/healthz", None, None).await.status, StatusCode::OK);
    let ready = stack.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{:?}", ready.body);
    stack.call(Method::GET, "/v1/worlds", None, None).await;
    let metrics = stack.http.get(format!("{}/metrics", stack.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"gateway_requests_total{route="GET /v1/worlds",status="200"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"gateway_request_duration_seconds_count{route="GET /v1/worlds"} 1"#), "{metrics}");
}

async fn an_upstream_that_is_down_is_503_and_recovers_by_itself(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on yet; story-service starts there later.
    let addr = fabula_testkit::restartable_address();
    // The gateway needs story-service's public key: make it as story-service would.
    fabula_runtime::keys::development_key(dir.path(), fabula_runtime::keys::ACCOUNTS_KEY_FILE).unwrap();
    let url = format!("http://{addr}");
    let gateway = Gateway::start(dir.path(), &url, &url, |_| {}).await;
    let http = common::http_client();
    let worlds = format!("{}/v1/worlds", gateway.base_url());

    let started = Instant::now();
    let down = common::Answer::read(http.get(&worlds).send().await.unwrap()).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", down.body);
    assert_eq!(down.body["error"]["status"], "UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_secs(3), "within the connect timeout: {:?}", started.elapsed());
    let ready = http.get(format!("{}/readyz", gateway.base_url())).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    let database = TestDatabase::create(backend, dir.path(), "story").await;
    let _story = StoryService::start(dir.path(), &database.url, |settings| settings.listen = addr).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = http.get(&worlds).send().await.unwrap().status();
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the gateway did not recover: {status}");
        // Polling the recovery, which is the subject: the gateway reconnects on its own time.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_for_allowed_origins_only() {
    // A preflight is the gateway's alone: no service, no storage, so one database is enough.
    let stack = common::spawn_with(Backend::Sqlite, |s| s.cors_origins = vec!["https://app.example".into()]).await;
    let preflight = |origin: &'static str| {
        stack
            .http
            .request(Method::OPTIONS, format!("{}/v1/worlds", stack.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert!(allowed.status().is_success());
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example");
    assert_eq!(allowed.headers()["access-control-max-age"], "600");
    let methods = allowed.headers()["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(refused.headers().get("access-control-allow-origin").is_none());
}

async fn rate_limits_answer_429_with_retry_after(backend: Backend) {
    let stack = common::spawn_with(backend, |s| {
        s.rate_limits.off = false;
        // The auth bucket's burst is its rate when that is below the general burst.
        s.rate_limits.auth_per_minute = 3;
    })
    .await;
    let login = json!({"login": "nobody", "password": "wrong password"});
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(stack.call(Method::POST, "/v1/auth/login", None, Some(login.clone())).await);
    }
    assert!(statuses[..3].iter().all(|a| a.status == StatusCode::UNAUTHORIZED), "{statuses:?}");
    let limited = &statuses[3];
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", limited.body);
    let retry: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(common::reason(&limited.body).as_deref(), Some("RATE_LIMITED"));
    // Other routes draw on the per-IP bucket only, which still has room.
    assert_eq!(stack.call(Method::GET, "/v1/worlds", None, None).await.status, StatusCode::OK);
}

/// Two story-service replicas behind one gateway. Each has a database of its own
/// holding one public world named after it, so an anonymous `GET /v1/worlds` says
/// which replica answered: the requests are shared between both, and once one has
/// stopped the other answers them (all but one racing the stop, see below).
async fn replicas_are_balanced_and_one_going_down_fails_no_request(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (first_db, second_db) = (
        TestDatabase::create(backend, dir.path(), "first").await,
        TestDatabase::create(backend, dir.path(), "second").await,
    );
    let mut first = StoryService::start(dir.path(), &first_db.url, |_| {}).await;
    let second = StoryService::start(dir.path(), &second_db.url, |_| {}).await;
    create_public_world(&first, "first").await;
    create_public_world(&second, "second").await;
    let story = format!("http://{}, http://{}", first.addr, second.addr);
    let gateway = Gateway::start(dir.path(), &story, &story, |_| {}).await;
    let http = common::http_client();
    let worlds = format!("{}/v1/worlds", gateway.base_url());
    let answered_by = async |what: String| {
        let answer = common::Answer::read(http.get(&worlds).send().await.unwrap()).await;
        assert_eq!(answer.status, StatusCode::OK, "{what}: {:?}", answer.body);
        let names: Vec<_> = answer.body["worlds"].as_array().unwrap().iter().map(|w| w["name"].clone()).collect();
        assert_eq!(names.len(), 1, "{what}: one replica's world: {:?}", answer.body);
        names[0].as_str().unwrap().to_owned()
    };

    let mut served = HashMap::<String, usize>::new();
    for i in 0..20 {
        *served.entry(answered_by(format!("request {i} to both")).await).or_default() += 1;
    }
    assert_eq!(served.len(), 2, "both replicas serve: {served:?}");
    assert!(served.values().all(|&n| n >= 5), "the requests are shared: {served:?}");

    // Once the first replica has stopped (drained, its listener closed), a request that
    // finds it gone goes to the other, with no time given to notice: even the first,
    // which may be sent on the connection to the stopped replica before the gateway has
    // read its close, is never taken there and goes on to the other replica.
    first.stop().await;
    for i in 0..40 {
        let what = format!("request {i} after the first replica stopped");
        assert_eq!(answered_by(what.clone()).await, "second", "{what}");
    }
}

/// Signs in as the administrator of `story` and creates a public world `name` there.
async fn create_public_world(story: &StoryService, name: &str) {
    let admin = story.admin().await;
    story.create_world(&admin, name, Visibility::Public).await;
}
