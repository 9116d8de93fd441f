//! story-service's test harness, on the shared test kit (`fabula_testkit`): the service
//! on a free loopback port with a database of its own (a new SQLite file, or a new
//! PostgreSQL database named by a UUID), its clients, users and tokens; and the binary
//! started as it is deployed.
//!
//! Write each test as `async fn name(backend: Backend)` and list it in
//! [`both_databases!`], which makes a `sqlite::name` and a `postgres::name` test of it.
//! The PostgreSQL variants need `FABULA_TEST_POSTGRES_URL` (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`); without it they say so loudly and pass.

use std::{ops::Deref, path::Path};

use fabula_runtime::token::{DelegationIssuer, SigningKey, WORKER_SERVICE};
use fabula_testkit::{TestDatabase, process::ServiceProcess};
use sqlx::AnyPool;
use story_service::Settings;
use tempfile::TempDir;
use tonic::Code;
use uuid::Uuid;

pub use fabula_testkit::{
    ADMIN_USERNAME, Backend, BadInput, PASSWORD, StoryClients, StoryService, TestUser, as_caller, authed, bad_fields,
    both_databases, connect, expect_code, expect_field_within, expect_invalid, expect_missing, expect_short_answer,
    reason,
};

/// A running story-service on a database of its own; its clients, users and token
/// signing come with it ([`StoryService`]). Dropping it stops the service, then
/// removes its database.
pub struct TestApp {
    service: StoryService,
    database: TestDatabase,
    _dir: TempDir,
}

/// Starts story-service on `backend` with the test settings.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts story-service on `backend` with the test settings changed by `configure`.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database = TestDatabase::create(backend, dir.path(), "story").await;
    let service = StoryService::start(dir.path(), &database.url, configure).await;
    TestApp { service, database, _dir: dir }
}

impl TestApp {
    /// A direct connection to the service's database, to check rows.
    pub async fn db(&self) -> &AnyPool {
        self.database.pool().await
    }

    /// `SELECT COUNT(*) FROM <from_where>` with `binds` for `$1`, `$2`…
    pub async fn count(&self, from_where: &str, binds: &[&str]) -> i64 {
        self.database.count(from_where, binds).await
    }
}

impl Deref for TestApp {
    type Target = StoryService;

    fn deref(&self) -> &StoryService {
        &self.service
    }
}

/// A story-service trusting a worker key (its settings changed by `configure`), and
/// that worker's token issuer, to act as gpt-worker's jobs.
pub async fn app_with_worker(
    backend: Backend,
    configure: impl FnOnce(&mut Settings),
) -> (TestApp, DelegationIssuer, TempDir) {
    let key = SigningKey::generate();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let public = dir.path().join("worker.pub.pem");
    std::fs::write(&public, key.verifying_key().to_pem()).expect("write the worker's public key");
    let app = spawn_app_with(backend, |settings| {
        settings.trusted_worker_key_file = Some(public);
        configure(settings);
    })
    .await;
    (app, DelegationIssuer::new(WORKER_SERVICE, key), dir)
}

/// The story-service binary, started as it is deployed: its settings in its
/// environment, SQLite in `dir`.
pub async fn start_binary(dir: &Path) -> ServiceProcess {
    let program = env!("CARGO_BIN_EXE_story-service");
    ServiceProcess::start("story-service", program, "fabula.story.v1.StoryService", |addr| {
        vec![
            ("STORY_LISTEN", addr.to_string()),
            ("STORY_DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.join("story.db").display())),
            ("FABULA_DATA_DIR", dir.display().to_string()),
        ]
    })
    .await
}

/// A fresh id that names nothing.
pub fn unknown_id() -> String {
    Uuid::now_v7().to_string()
}

/// One case of a table of refusals: `request`, sent with `token` (or none), is refused
/// with `code` and the `ErrorInfo.reason` `want`; `why` says who tries what.
pub struct Refusal<'a, R> {
    pub request: R,
    pub token: Option<&'a str>,
    pub code: Code,
    pub want: &'static str,
    pub why: &'static str,
}

/// One case of a bad-input table whose request is wrong in several fields at once: the
/// `BadRequest` names each of `fields`.
pub struct BadFields<R> {
    pub request: R,
    pub fields: &'static [&'static str],
    pub why: &'static str,
}

/// One case of a list filter table: `filter` lists `expected`; `why` says what it picks.
pub struct Filtered<'a, T> {
    pub filter: &'a str,
    pub expected: Vec<&'a T>,
    pub why: &'static str,
}
