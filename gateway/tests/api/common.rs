//! The integration-test harness: a real story-service and gpt-worker on loopback
//! (fresh databases, SQLite files or PostgreSQL databases of their own, and the
//! development keys in a directory of the test's own) and the gateway in front, all on
//! free ports, and a real HTTP client.
//!
//! A test that reaches the services' storage is written as `async fn name(backend:
//! Backend)` and listed in its file's `both_databases!(...)`, so it runs on both.
#![allow(dead_code)]

use std::{net::SocketAddr, path::Path, time::Duration};

use fabula_runtime::{config::Secret, keys};
pub use fabula_testkit::{Backend, both_databases};
use fabula_testkit::{Server, TestDatabase};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const ADMIN_USERNAME: &str = "root_admin";
pub const ADMIN_PASSWORD: &str = "admin password 123";
pub const PASSWORD: &str = "correct horse battery";

/// The three processes and a client of the gateway.
pub struct Stack {
    pub base: String,
    pub gateway_addr: SocketAddr,
    pub story_addr: SocketAddr,
    pub http: reqwest::Client,
    gateway: Server,
    worker: Server,
    story: Server,
    /// Dropped after the services that use them.
    databases: [TestDatabase; 2],
    pub dir: TempDir,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// A user registered through the gateway.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub token: String,
}

/// Starts story-service on `addr` (port 0 for any) on `database_url`, with its keys in `dir`.
pub async fn start_story_service(dir: &Path, database_url: &str, addr: SocketAddr) -> (SocketAddr, Server) {
    let database_url = database_url.to_owned();
    let mut settings = story_service::Settings::for_tests(database_url, dir);
    settings.listen = addr;
    settings.admin_username = Some(ADMIN_USERNAME.into());
    settings.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    let app = story_service::build(settings).await.expect("story-service builds");
    let addr = app.local_addr();
    let running = Server::spawn("story-service", |shutdown| app.run_until_stopped(shutdown));
    (addr, running)
}

async fn start_worker(dir: &Path, database_url: &str, story: SocketAddr) -> (SocketAddr, Server) {
    let settings = gpt_worker::Settings::for_tests(database_url.to_owned(), format!("http://{story}"), dir);
    let app = gpt_worker::build(settings).await.expect("gpt-worker builds");
    let addr = app.local_addr();
    let running = Server::spawn("gpt-worker", |shutdown| app.run_until_stopped(shutdown));
    (addr, running)
}

/// Starts a gateway in front of `story` and `worker` with settings changed by `configure`.
pub async fn start_gateway(
    dir: &Path,
    story: &str,
    worker: &str,
    configure: impl FnOnce(&mut gateway::Settings),
) -> (SocketAddr, Server) {
    let mut settings = gateway::Settings::for_tests(story, worker, dir.join(keys::ACCOUNTS_PUBLIC_KEY_FILE));
    configure(&mut settings);
    let app = gateway::build(settings).await.expect("the gateway builds");
    let addr = app.local_addr();
    let running = Server::spawn("gateway", |shutdown| app.run_until_stopped(shutdown));
    (addr, running)
}

/// The whole stack on `backend` with the test settings.
pub async fn spawn(backend: Backend) -> Stack {
    spawn_with(backend, |_| {}).await
}

/// The whole stack on `backend`, the gateway's settings changed by `configure`.
pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut gateway::Settings)) -> Stack {
    if let Ok(filter) = std::env::var("FABULA_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let databases = [
        TestDatabase::create(backend, dir.path(), "story").await,
        TestDatabase::create(backend, dir.path(), "worker").await,
    ];
    let any = "127.0.0.1:0".parse().expect("an address");
    let (story_addr, story) = start_story_service(dir.path(), &databases[0].url, any).await;
    let (worker_addr, worker) = start_worker(dir.path(), &databases[1].url, story_addr).await;
    let (gateway_addr, gateway) =
        start_gateway(dir.path(), &format!("http://{story_addr}"), &format!("http://{worker_addr}"), configure).await;
    Stack {
        base: format!("http://{gateway_addr}"),
        gateway_addr,
        story_addr,
        http: client(),
        gateway,
        worker,
        story,
        databases,
        dir,
    }
}

pub fn client() -> reqwest::Client {
    // reqwest is built without a crypto provider; the tests speak plain HTTP but it wants one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("an HTTP client")
}

/// Reads `response` whole; an empty or non-JSON body is `Value::Null` or a string.
pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("read the body");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| match bytes.is_empty() {
        true => Value::Null,
        false => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
    });
    Answer { status, headers, body }
}

impl Stack {
    /// `method path` with `token` and a JSON `body`.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.expect("the gateway answers")).await
    }

    pub async fn register(&self, username: &str) -> User {
        let body = json!({"username": username, "email": format!("{username}@example.test"), "password": PASSWORD});
        let answer = self.call(Method::POST, "/v1/auth/register", None, Some(body)).await;
        assert_eq!(answer.status, StatusCode::OK, "register: {:?}", answer.body);
        user_of(&answer.body)
    }

    pub async fn admin(&self) -> User {
        let body = json!({"login": ADMIN_USERNAME, "password": ADMIN_PASSWORD});
        let answer = self.call(Method::POST, "/v1/auth/login", None, Some(body)).await;
        assert_eq!(answer.status, StatusCode::OK, "admin login: {:?}", answer.body);
        user_of(&answer.body)
    }

    /// The administrator grants `user` model access.
    pub async fn enable_gpt(&self, user: &User) {
        let admin = self.admin().await;
        let path = format!("/v1/admin/users/{}", user.id);
        let answer = self.call(Method::PATCH, &path, Some(&admin.token), Some(json!({"gptEnabled": true}))).await;
        assert_eq!(answer.status, StatusCode::OK, "enable gpt: {:?}", answer.body);
        assert_eq!(answer.body["gptEnabled"], true);
    }

    /// Creates a world of `owner` and returns it.
    pub async fn create_world(&self, owner: &User, name: &str) -> Value {
        let body = json!({"name": name, "worldType": "FANTASY"});
        let answer = self.call(Method::POST, "/v1/worlds", Some(&owner.token), Some(body)).await;
        assert_eq!(answer.status, StatusCode::CREATED, "create world: {:?}", answer.body);
        answer.body
    }
}

fn user_of(body: &Value) -> User {
    User {
        id: body["user"]["id"].as_str().expect("a user id").to_owned(),
        token: body["accessToken"].as_str().expect("an access token").to_owned(),
    }
}

pub use fabula_testkit::json_reason as reason;

impl Answer {
    /// Asserts this is an error of `status` in the Google JSON shape with gRPC status
    /// name `name` and `ErrorInfo.reason` `reason`.
    #[track_caller]
    pub fn expect_error(&self, status: StatusCode, name: &str, reason: &str, what: &str) {
        fabula_testkit::expect_json_error(self.status, &self.body, status, name, reason, what);
    }
}
