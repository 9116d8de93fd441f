//! The services a test starts on loopback, on the test's runtime, each failing the test
//! when it fails ([`Server`]): story-service, gpt-worker and the gateway, on port 0 (or
//! an address the test picks) with the test settings a closure may change; and a
//! [`Stack`] of them in a directory of the test's own (their development keys), each
//! on a fresh database.
//!
//! `FABULA_TEST_LOG=story_service=debug` (an `EnvFilter`) shows the services' own logs.

use std::{net::SocketAddr, ops::Deref, path::Path};

use fabula_contracts::pb::accounts::Role;
use fabula_runtime::{
    config::Secret,
    keys,
    token::{ACCESS, AUDIENCE, Claims, ISSUER, SigningKey, unix_now},
};

use crate::{ADMIN_PASSWORD, ADMIN_USERNAME, Server, StoryClients};
#[cfg(feature = "worker")]
use crate::{Backend, TestDatabase, jobs_client};

/// Shows the services' logs in the test's output when `FABULA_TEST_LOG` asks for them.
fn show_service_logs() {
    if let Ok(filter) = std::env::var("FABULA_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}

/// A running story-service and clients of it. Stopped when dropped.
pub struct StoryService {
    pub addr: SocketAddr,
    /// The key it signs tokens with, so tests can forge their own.
    pub key: SigningKey,
    clients: StoryClients,
    server: Server,
}

impl StoryService {
    /// Starts story-service on `database_url` with its keys in `dir` (development keys,
    /// made when new) and the administrator [`ADMIN_USERNAME`], its test settings
    /// changed by `configure`.
    pub async fn start(dir: &Path, database_url: &str, configure: impl FnOnce(&mut story_service::Settings)) -> Self {
        show_service_logs();
        let mut settings = story_service::Settings::for_tests(database_url, dir);
        settings.admin_username = Some(ADMIN_USERNAME.into());
        settings.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        configure(&mut settings);
        let key_file = settings.token_private_key_file.clone().unwrap_or_else(|| dir.join(keys::ACCOUNTS_KEY_FILE));
        let app = story_service::build(settings).await.expect("story-service builds");
        let key = keys::read_signing_key(&key_file).expect("story-service's signing key");
        assert_eq!(app.verifying_key(), key.verifying_key(), "story-service signs with {}", key_file.display());
        let addr = app.local_addr();
        let server = Server::spawn("story-service", |shutdown| app.run_until_stopped(shutdown));
        Self { addr, key, clients: StoryClients::connect(addr).await, server }
    }

    /// Stops it as a restart would (shutdown signal, then drain) and waits until it has
    /// stopped; its address then refuses connections.
    pub async fn stop(&mut self) {
        self.server.stop().await;
    }

    /// Valid access-token claims for user `sub`, to change and sign with [`StoryService::sign`].
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
            jti: uuid::Uuid::new_v4().to_string(),
            job: None,
        }
    }

    /// `claims` signed with the service's own key.
    pub fn sign(&self, claims: &Claims) -> String {
        self.key.sign(claims)
    }
}

impl Deref for StoryService {
    type Target = StoryClients;

    fn deref(&self) -> &StoryClients {
        &self.clients
    }
}

/// A running gpt-worker. Stopped when dropped.
#[cfg(feature = "worker")]
pub struct Worker {
    pub addr: SocketAddr,
    channel: tonic::transport::Channel,
    server: Server,
}

#[cfg(feature = "worker")]
impl Worker {
    /// The test settings of a worker on `database_url` calling the story-service at
    /// `story`, with the development keys in `dir`.
    pub fn settings(dir: &Path, database_url: &str, story: SocketAddr) -> gpt_worker::Settings {
        gpt_worker::Settings::for_tests(database_url, format!("http://{story}"), dir)
    }

    /// Builds a worker with `settings` and runs it.
    pub async fn start(settings: gpt_worker::Settings) -> Self {
        show_service_logs();
        let app = gpt_worker::build(settings).await.expect("gpt-worker builds");
        let addr = app.local_addr();
        let server = Server::spawn("gpt-worker", |shutdown| app.run_until_stopped(shutdown));
        Self { addr, channel: crate::connect(addr).await, server }
    }

    pub fn jobs(&self) -> fabula_contracts::pb::jobs::job_service_client::JobServiceClient<tonic::transport::Channel> {
        jobs_client(self.channel.clone())
    }

    /// Resolves the worker's shutdown future (SIGTERM) and waits until it has stopped.
    pub async fn stop(mut self) {
        self.server.stop().await;
    }
}

/// A running gateway. Stopped when dropped.
#[cfg(feature = "gateway")]
pub struct Gateway {
    pub addr: SocketAddr,
    _server: Server,
}

#[cfg(feature = "gateway")]
impl Gateway {
    /// Starts a gateway in front of the story-services at `story` and the workers at
    /// `worker` (comma-separated `http://` URLs), trusting the tokens of the development
    /// key in `dir`, its test settings changed by `configure`.
    pub async fn start(dir: &Path, story: &str, worker: &str, configure: impl FnOnce(&mut gateway::Settings)) -> Self {
        show_service_logs();
        let mut settings = gateway::Settings::for_tests(story, worker, dir.join(keys::ACCOUNTS_PUBLIC_KEY_FILE));
        configure(&mut settings);
        let app = gateway::build(settings).await.expect("the gateway builds");
        let addr = app.local_addr();
        Self { addr, _server: Server::spawn("gateway", |shutdown| app.run_until_stopped(shutdown)) }
    }

    /// Its base URL, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// story-service and the gpt-workers a test starts, sharing one directory (and so the
/// development keys), each service on a database of its own on one backend. Dropping it
/// stops them all and then removes the databases.
#[cfg(feature = "worker")]
pub struct Stack {
    pub backend: Backend,
    /// The first worker, once [`Stack::spawn_with_worker`] started it.
    pub worker: Option<Worker>,
    pub story: StoryService,
    // Dropped after the services are told to stop, in this order.
    pub story_database: TestDatabase,
    pub jobs_database: TestDatabase,
    pub dir: tempfile::TempDir,
}

#[cfg(feature = "worker")]
impl Stack {
    /// Starts story-service on `backend` and makes the workers' job database, but starts
    /// no worker. story-service listens where it can be stopped and started again
    /// ([`crate::restartable_address`]).
    pub async fn spawn(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let story_database = TestDatabase::create(backend, dir.path(), "story").await;
        let jobs_database = TestDatabase::create(backend, dir.path(), "worker").await;
        let listen = crate::restartable_address();
        let story = StoryService::start(dir.path(), &story_database.url, |s| s.listen = listen).await;
        Self { backend, worker: None, story, story_database, jobs_database, dir }
    }

    /// Starts story-service and one worker on `backend`, the worker's settings changed by `configure`.
    pub async fn spawn_with_worker(backend: Backend, configure: impl FnOnce(&mut gpt_worker::Settings)) -> Self {
        let mut stack = Self::spawn(backend).await;
        stack.worker = Some(stack.start_worker(configure).await);
        stack
    }

    /// The settings of a worker of this stack: the test settings, changed by `configure`.
    pub fn worker_settings(&self, configure: impl FnOnce(&mut gpt_worker::Settings)) -> gpt_worker::Settings {
        let mut settings = Worker::settings(self.dir.path(), &self.jobs_database.url, self.story.addr);
        configure(&mut settings);
        settings
    }

    /// Starts another worker on the stack's job database.
    pub async fn start_worker(&self, configure: impl FnOnce(&mut gpt_worker::Settings)) -> Worker {
        Worker::start(self.worker_settings(configure)).await
    }

    /// The first worker, which [`Stack::spawn_with_worker`] started.
    pub fn first_worker(&self) -> &Worker {
        self.worker.as_ref().expect("the stack started a worker")
    }

    /// Starts story-service again, on its old address and database, after
    /// [`StoryService::stop`].
    pub async fn restart_story_service(&mut self) {
        let listen = self.story.addr;
        self.story = StoryService::start(self.dir.path(), &self.story_database.url, |s| s.listen = listen).await;
        assert_eq!(self.story.addr, listen, "story-service is back on its address");
    }
}

#[cfg(feature = "worker")]
impl Deref for Stack {
    type Target = StoryService;

    fn deref(&self) -> &StoryService {
        &self.story
    }
}
