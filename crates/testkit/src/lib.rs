//! What the services' integration tests share: a test written once runs on SQLite
//! and on PostgreSQL ([`both_databases!`](crate::both_databases)), each PostgreSQL
//! test in a database of its own ([`PostgresDb`]), and a loud note when PostgreSQL is
//! not configured; and the services a test starts ([`Server`]), which fail the test
//! when they fail. A dev-dependency only.

use std::io::Write;

use sqlx::Connection;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;
use uuid::Uuid;

mod server;

pub use server::{Server, Shutdown, restartable_address};

/// The environment variable naming the PostgreSQL admin URL.
pub const POSTGRES_URL_VAR: &str = "FABULA_TEST_POSTGRES_URL";

/// The database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Makes `sqlite::<test>` and `postgres::<test>` of each `async fn <test>(Backend)`.
#[macro_export]
macro_rules! both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::skip_without_postgres(concat!(module_path!(), "::", stringify!($name))) {
                        return;
                    }
                    super::$name($crate::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// The PostgreSQL admin URL, when configured.
pub fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_URL_VAR).ok().filter(|url| !url.trim().is_empty())
}

/// True (after a loud warning that the test harness does not capture) when
/// PostgreSQL is not configured and the test cannot run on it; in CI, a failure.
pub fn skip_without_postgres(test: &str) -> bool {
    let why =
        format!("{POSTGRES_URL_VAR} is not set (e.g. {POSTGRES_URL_VAR}=postgres://postgres@127.0.0.1:5432/postgres)");
    skipped_unless(postgres_url().is_some(), &format!("{test} on PostgreSQL"), &why)
}

/// Whether `program` runs with `args` and succeeds: a tool a test drives is there.
pub fn runs(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program).args(args).output().is_ok_and(|output| output.status.success())
}

/// False when `ready`; else says loudly that `test` did NOT run and `why` (what is
/// missing, and how to get it), and returns true so the test returns. A skip passes
/// on a laptop but fails in CI (`CI` set), which installs everything the tests need.
pub fn skipped_unless(ready: bool, test: &str, why: &str) -> bool {
    if ready {
        return false;
    }
    let note = format!("{test} did NOT run: {why}");
    assert!(std::env::var_os("CI").is_none(), "{note}; CI provides it and must not pass on a skip");
    let _ = writeln!(std::io::stderr(), "\n!!! WARNING: {note} !!!");
    true
}

/// A database created for one test and dropped with it.
pub struct PostgresDb {
    admin_url: String,
    name: String,
}

impl PostgresDb {
    /// Creates a database named by a fresh UUID through `admin_url`.
    pub async fn create(admin_url: String) -> Self {
        let name = format!("fabula_test_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to the PostgreSQL admin URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        Self { admin_url, name }
    }

    /// The URL of this database: the admin URL with its database name replaced.
    pub fn url(&self) -> String {
        let (scheme, rest) = self.admin_url.split_once("://").expect("a URL with a scheme");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let query = path.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
        format!("{scheme}://{authority}/{}{query}", self.name)
    }
}

impl Drop for PostgresDb {
    /// Drops the database on a thread of its own with its own runtime: this may run
    /// inside the test's runtime, which cannot be blocked on.
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let _ = writeln!(std::io::stderr(), "warning: could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

/// Runs `command` (stdin closed, stdout and stderr together) for at most `budget`,
/// killing it past that: its exit status, `None` when it was killed, and all it printed.
/// It polls without blocking the test's runtime, which may be serving what the command
/// talks to.
pub async fn run_within(
    mut command: std::process::Command,
    budget: std::time::Duration,
) -> (Option<std::process::ExitStatus>, String) {
    let log = std::env::temp_dir().join(format!("fabula-test-{}.log", Uuid::new_v4().simple()));
    let file = std::fs::File::create(&log).expect("create the command's log");
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone().expect("share the log"))
        .stderr(file)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the command") {
            break Some(status);
        }
        if started.elapsed() > budget {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    (status, output)
}

/// `message` with `authorization: Bearer <token>`.
pub fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().expect("a token is valid metadata"));
    request
}

/// `message` as `token`'s holder, or anonymous when `None`.
pub fn as_caller<T>(message: T, token: Option<&str>) -> Request<T> {
    match token {
        Some(token) => authed(message, token),
        None => Request::new(message),
    }
}

/// The `ErrorInfo.reason` of `status`, if it has one.
pub fn reason(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|info| info.reason)
}

/// The fields a `BadRequest` of `status` names.
pub fn bad_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// A database for one service of a test: a new SQLite file in the test's directory,
/// or a new PostgreSQL database ([`PostgresDb`]) dropped with this.
pub struct TestDatabase {
    pub url: String,
    _postgres: Option<PostgresDb>,
}

impl TestDatabase {
    /// `name`.db in `dir` on SQLite; a database named by a fresh UUID on PostgreSQL.
    pub async fn create(backend: Backend, dir: &std::path::Path, name: &str) -> Self {
        match backend {
            Backend::Sqlite => Self { url: format!("sqlite://{}/{name}.db?mode=rwc", dir.display()), _postgres: None },
            Backend::Postgres => {
                let admin_url = postgres_url().unwrap_or_else(|| panic!("{POSTGRES_URL_VAR} is not set"));
                let db = PostgresDb::create(admin_url).await;
                Self { url: db.url(), _postgres: Some(db) }
            }
        }
    }
}

/// The error of `result`, after checking its gRPC code and its `ErrorInfo.reason`:
/// every error a service returns says why in one. `context` says what was tried.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, want: &str, context: &str) -> Status {
    match result {
        Ok(value) => panic!("{context}: expected {code:?} ({want}), got OK: {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{context}: wrong code ({status:?})");
            assert_eq!(reason(&status).as_deref(), Some(want), "{context}: wrong ErrorInfo reason ({status:?})");
            status
        }
    }
}

/// Checks `result` is INVALID_ARGUMENT (reason INVALID_ARGUMENT) with a `BadRequest`
/// naming `field`.
#[track_caller]
pub fn expect_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str, context: &str) -> Status {
    let status = expect_code(result, Code::InvalidArgument, "INVALID_ARGUMENT", context);
    expect_field(&status, field, context);
    status
}

/// Checks `result` is NOT_FOUND (reason REFERENCE_NOT_FOUND) with a `BadRequest`
/// naming `field`: a well-formed id that names nothing the world holds.
#[track_caller]
pub fn expect_missing<T: std::fmt::Debug>(result: Result<T, Status>, field: &str, context: &str) -> Status {
    let status = expect_code(result, Code::NotFound, "REFERENCE_NOT_FOUND", context);
    expect_field(&status, field, context);
    status
}

/// Checks the `BadRequest` of `status` names `field`.
#[track_caller]
pub fn expect_field(status: &Status, field: &str, context: &str) {
    let fields = bad_fields(status);
    assert!(fields.iter().any(|f| f == field), "{context}: BadRequest names {fields:?}, not {field:?} ({status:?})");
}

/// The `ErrorInfo.reason` of an error body in the Google JSON shape, if it has one.
pub fn json_reason(body: &serde_json::Value) -> Option<String> {
    body["error"]["details"]
        .as_array()?
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
        .and_then(|d| d["reason"].as_str())
        .map(str::to_owned)
}

/// Checks an HTTP answer (`status`, `body`) is an error of status `want` in the Google
/// JSON shape, with gRPC status name `name`, a message and the `ErrorInfo.reason`
/// `reason`: what [`expect_code`] checks of a gRPC error, over REST.
#[track_caller]
pub fn expect_json_error(
    status: http::StatusCode,
    body: &serde_json::Value,
    want: http::StatusCode,
    name: &str,
    reason: &str,
    what: &str,
) {
    assert_eq!(status, want, "{what}: {body}");
    let error = &body["error"];
    assert_eq!(error["code"], want.as_u16(), "{what}: {body}");
    assert_eq!(error["status"], name, "{what}: {body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: a message: {body}");
    assert_eq!(json_reason(body).as_deref(), Some(reason), "{what}: wrong ErrorInfo reason: {body}");
}
