//! The integration-test harness: starts the real story-service on a free loopback
//! port with a database of its own (a new SQLite file, or a new PostgreSQL database
//! named by a UUID), and hands out typed gRPC clients, users and tokens.
//!
//! Write each test as `async fn name(backend: Backend)` and list it in
//! [`both_databases!`], which makes a `sqlite::name` and a `postgres::name` test of it.
//! The PostgreSQL variants need `FABULA_TEST_POSTGRES_URL` (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`); without it they say so loudly and pass.
#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use fabula_contracts::pb::{
    accounts::{LoginRequest, RegisterRequest, Role, account_service_client::AccountServiceClient},
    story::{
        CreateStoryRequest, CreateWorldRequest, ShareRole, ShareWorldRequest, Story, Visibility, World,
        entity_service_client::EntityServiceClient, event_service_client::EventServiceClient,
        location_service_client::LocationServiceClient, story_service_client::StoryServiceClient,
        world_service_client::WorldServiceClient,
    },
};
use fabula_runtime::{
    config::Secret,
    server::is_serving,
    token::{ACCESS, AUDIENCE, Claims, ISSUER, SigningKey, unix_now},
};
use sqlx::{AnyPool, Row};
use story_service::Settings;
use tempfile::TempDir;
use tokio::sync::OnceCell;
use tonic::transport::Channel;
use uuid::Uuid;

/// The administrator every test app is started with.
pub const ADMIN_USERNAME: &str = "root_admin";
pub const ADMIN_PASSWORD: &str = "admin password 123";
/// The password of every registered test user.
pub const PASSWORD: &str = "correct horse battery";
/// What the clients send and accept at most: far above the server's limit, so the
/// server's limit is what a test meets.
const CLIENT_MESSAGE_LIMIT: usize = 64 * 1024 * 1024;

// Each test binary uses its own part of these.
#[allow(unused_imports)]
pub use fabula_testkit::{
    Backend, Server, TestDatabase, as_caller, authed, bad_fields, expect_code, expect_invalid, expect_missing, reason,
};

/// `fabula_testkit::both_databases!`, under the name the tests of this crate use.
macro_rules! both_databases {
    ($($tests:tt)*) => {
        fabula_testkit::both_databases!($($tests)*);
    };
}

/// A running story-service. Dropping it stops the server and removes its database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub backend: Backend,
    pub database_url: String,
    /// The key the service signs tokens with, so tests can forge their own.
    pub key: SigningKey,
    channel: Channel,
    pool: OnceCell<AnyPool>,
    /// Stopped when dropped, first: the PostgreSQL database is then dropped WITH (FORCE).
    server: Server,
    // Dropped after the server is told to stop, in this order.
    database: TestDatabase,
    dir: TempDir,
}

/// Starts story-service on `backend` with the default settings.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts story-service on `backend` with settings changed by `configure`.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    if let Ok(filter) = std::env::var("FABULA_TEST_LOG") {
        // The service's own logs, for a failing test: FABULA_TEST_LOG=story_service=debug.
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database = TestDatabase::create(backend, dir.path(), "story").await;
    let database_url = database.url.clone();
    let key = SigningKey::generate();
    let key_file = dir.path().join("token-key.pem");
    std::fs::write(&key_file, key.to_pem()).expect("write the token key");

    let mut settings = Settings::for_tests(database_url.clone(), dir.path());
    settings.token_private_key_file = Some(key_file);
    settings.admin_username = Some(ADMIN_USERNAME.into());
    settings.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    configure(&mut settings);

    let app = story_service::build(settings).await.expect("story-service builds");
    let addr = app.local_addr();
    assert_eq!(app.verifying_key(), key.verifying_key(), "the service signs with the harness key");
    let server = Server::spawn("story-service", |shutdown| app.run_until_stopped(shutdown));
    let channel = connect(addr).await;
    TestApp { addr, backend, database_url, key, channel, pool: OnceCell::new(), server, database, dir }
}

/// A new HTTP/2 connection to `addr`.
pub async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a valid URI")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect to story-service")
}

/// A registered user and their tokens.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub email: String,
    pub token: String,
    pub refresh_token: String,
}

impl TestApp {
    /// The shared connection, for a client of any service.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn accounts(&self) -> AccountServiceClient<Channel> {
        AccountServiceClient::new(self.channel())
            .max_decoding_message_size(CLIENT_MESSAGE_LIMIT)
            .max_encoding_message_size(CLIENT_MESSAGE_LIMIT)
    }

    pub fn worlds(&self) -> WorldServiceClient<Channel> {
        WorldServiceClient::new(self.channel())
            .max_decoding_message_size(CLIENT_MESSAGE_LIMIT)
            .max_encoding_message_size(CLIENT_MESSAGE_LIMIT)
    }

    pub fn stories(&self) -> StoryServiceClient<Channel> {
        stories_client(self.channel())
    }

    pub fn entities(&self) -> EntityServiceClient<Channel> {
        EntityServiceClient::new(self.channel())
            .max_decoding_message_size(CLIENT_MESSAGE_LIMIT)
            .max_encoding_message_size(CLIENT_MESSAGE_LIMIT)
    }

    pub fn locations(&self) -> LocationServiceClient<Channel> {
        LocationServiceClient::new(self.channel())
            .max_decoding_message_size(CLIENT_MESSAGE_LIMIT)
            .max_encoding_message_size(CLIENT_MESSAGE_LIMIT)
    }

    pub fn events(&self) -> EventServiceClient<Channel> {
        EventServiceClient::new(self.channel())
            .max_decoding_message_size(CLIENT_MESSAGE_LIMIT)
            .max_encoding_message_size(CLIENT_MESSAGE_LIMIT)
    }

    /// A direct connection to the service's database, to check rows.
    pub async fn db(&self) -> &AnyPool {
        self.pool
            .get_or_init(|| async {
                sqlx::any::install_default_drivers();
                sqlx::any::AnyPoolOptions::new()
                    .max_connections(2)
                    .connect(&self.database_url)
                    .await
                    .expect("connect to the test database")
            })
            .await
    }

    /// `SELECT COUNT(*) FROM <from_where>` with `binds` for `$1`, `$2`…
    pub async fn count(&self, from_where: &str, binds: &[&str]) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {from_where}");
        let query = binds.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, b| q.bind(*b));
        query.fetch_one(self.db().await).await.expect("count rows").try_get(0).expect("a count")
    }

    /// Registers `username` (email `<username>@example.test`, password [`PASSWORD`]).
    pub async fn register(&self, username: &str) -> TestUser {
        let email = format!("{}@example.test", username.to_lowercase());
        let request = RegisterRequest { username: username.into(), email: email.clone(), password: PASSWORD.into() };
        let response = self.accounts().register(request).await.expect("register").into_inner();
        let user = response.user.expect("Register returns the user");
        TestUser {
            id: user.id,
            username: user.username,
            email,
            token: response.access_token,
            refresh_token: response.refresh_token,
        }
    }

    /// Signs in the administrator the app was started with.
    pub async fn admin(&self) -> TestUser {
        let request = LoginRequest { login: ADMIN_USERNAME.into(), password: ADMIN_PASSWORD.into() };
        let response = self.accounts().login(request).await.expect("the administrator signs in").into_inner();
        let user = response.user.expect("Login returns the user");
        assert_eq!(user.role(), Role::Admin, "the configured administrator is an ADMIN");
        TestUser {
            id: user.id,
            username: user.username,
            email: user.email,
            token: response.access_token,
            refresh_token: response.refresh_token,
        }
    }

    /// Valid access-token claims for user `sub`, to change and sign with [`TestApp::sign`].
    pub fn claims(&self, sub: &str) -> Claims {
        let now = unix_now();
        Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: sub.into(),
            iat: now as f64,
            nbf: now,
            exp: now + 900,
            typ: ACCESS.into(),
            role: Role::User.as_str_name().into(),
            jti: Uuid::new_v4().to_string(),
            job: None,
        }
    }

    /// `claims` signed with the service's own key.
    pub fn sign(&self, claims: &Claims) -> String {
        self.key.sign(claims)
    }

    /// Creates a world of `owner` and returns it.
    pub async fn create_world(&self, owner: &TestUser, name: &str, visibility: Visibility) -> World {
        let world = World { name: name.into(), visibility: visibility.into(), ..World::default() };
        let request = CreateWorldRequest { world: Some(world), request_id: String::new() };
        self.worlds().create_world(authed(request, &owner.token)).await.expect("create a world").into_inner()
    }

    /// Creates a story by `author` in `world_id` and returns it.
    pub async fn create_story(&self, author: &TestUser, world_id: &str, title: &str, visibility: Visibility) -> Story {
        let story = Story { title: title.into(), visibility: visibility.into(), ..Story::default() };
        let request = CreateStoryRequest { world_id: world_id.into(), story: Some(story), request_id: String::new() };
        self.stories().create_story(authed(request, &author.token)).await.expect("create a story").into_inner()
    }

    /// Shares `world_id` of `owner` with `user` as `role`.
    pub async fn share(&self, owner: &TestUser, world_id: &str, user: &TestUser, role: ShareRole) {
        let request = ShareWorldRequest { world_id: world_id.into(), user: user.id.clone(), role: role.into() };
        self.worlds().share_world(authed(request, &owner.token)).await.expect("share the world");
    }
}

/// A StoryService client on `channel` with the harness's message limits.
pub fn stories_client(channel: Channel) -> StoryServiceClient<Channel> {
    StoryServiceClient::new(channel)
        .max_decoding_message_size(CLIENT_MESSAGE_LIMIT)
        .max_encoding_message_size(CLIENT_MESSAGE_LIMIT)
}

/// The story-service binary, started as it is deployed: its settings in its
/// environment (SQLite in a directory of its own, a free loopback port, `RUST_LOG`
/// info), its output (the log) in a file. Killed when dropped, if still running.
pub struct Binary {
    pub addr: SocketAddr,
    child: std::process::Child,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl Binary {
    /// Starts the binary and waits until it serves.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // A free port: bound, read, released for the child.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
        let log = dir.path().join("story-service.log");
        let log_file = std::fs::File::create(&log).expect("a log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_story-service"))
            .env_clear()
            .env("STORY_LISTEN", addr.to_string())
            .env("STORY_DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("story.db").display()))
            .env("FABULA_DATA_DIR", dir.path())
            .env("RUST_LOG", "info")
            .stdout(log_file.try_clone().expect("share the log"))
            .stderr(log_file)
            .spawn()
            .expect("start story-service");
        let binary = Self { addr, child, log, _dir: dir };
        let started = std::time::Instant::now();
        while !is_serving(addr, "fabula.story.v1.StoryService", Duration::from_millis(200)).await {
            assert!(started.elapsed() < Duration::from_secs(20), "never served:\n{}", binary.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        binary
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends it SIGTERM, as a container runtime stops it.
    pub fn terminate(&self) {
        let killed = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        assert!(killed.expect("run kill").success(), "SIGTERM sent");
    }

    /// Its exit status once it has exited, or `None` when it still runs after `timeout`.
    pub async fn exit_within(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let waiting = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return Some(status);
            }
            if waiting.elapsed() > timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A fresh id that names nothing.
pub fn unknown_id() -> String {
    Uuid::now_v7().to_string()
}
