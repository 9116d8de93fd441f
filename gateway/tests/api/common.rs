//! The gateway's test harness, on the shared test kit (`fabula_testkit`): story-service
//! and gpt-worker on loopback ([`fabula_testkit::Stack`]: fresh databases, SQLite files
//! or PostgreSQL databases of their own, and the development keys in a directory of the
//! test's own), the gateway in front, all on free ports, and a real HTTP client.
//!
//! A test that reaches the services' storage is written as `async fn name(backend:
//! Backend)` and listed in its file's `both_databases!(...)`, so it runs on both.

use std::net::SocketAddr;

use fabula_testkit::{Gateway, rest::answer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub use fabula_testkit::{
    Backend, PASSWORD, both_databases, json_reason as reason,
    rest::{Answer, Rest, RestUser, http_client},
};

/// The three services and a client of the gateway.
pub struct Stack {
    pub base: String,
    pub gateway_addr: SocketAddr,
    pub story_addr: SocketAddr,
    pub http: reqwest::Client,
    /// The gateway, called anonymously; `rest.with_token` calls as a user.
    pub rest: Rest,
    _gateway: Gateway,
    /// story-service and gpt-worker, stopped after the gateway.
    pub services: fabula_testkit::Stack,
}

/// The whole stack on `backend` with the test settings.
pub async fn spawn(backend: Backend) -> Stack {
    spawn_with(backend, |_| {}).await
}

/// The whole stack on `backend`, the gateway's settings changed by `configure`.
pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut gateway::Settings)) -> Stack {
    let services = fabula_testkit::Stack::spawn_with_worker(backend, |_| {}).await;
    let story = format!("http://{}", services.story.addr);
    let worker = format!("http://{}", services.first_worker().addr);
    let gateway = Gateway::start(services.dir.path(), &story, &worker, configure).await;
    Stack {
        base: gateway.base_url(),
        gateway_addr: gateway.addr,
        story_addr: services.story.addr,
        http: http_client(),
        rest: Rest::new(gateway.base_url()),
        _gateway: gateway,
        services,
    }
}

impl Stack {
    /// `method path` with `token` and a JSON `body`.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let rest = match token {
            Some(token) => self.rest.with_token(token),
            None => self.rest.anonymous(),
        };
        let request = rest.request(method, path);
        answer(match body {
            Some(body) => request.json(&body),
            None => request,
        })
        .await
    }

    /// Creates a world of `owner` and returns it.
    pub async fn create_world(&self, owner: &RestUser, name: &str) -> Value {
        let body = json!({"name": name, "worldType": "FANTASY"});
        let answer = self.call(Method::POST, "/v1/worlds", Some(&owner.token), Some(body)).await;
        assert_eq!(answer.status, StatusCode::CREATED, "create world: {:?}", answer.body);
        answer.body
    }
}
