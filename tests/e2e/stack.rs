//! Starts the whole stack the way `cargo run` does: the command line parsed into
//! [`fabula::Settings`], then [`fabula::build`] and [`fabula::Stack::run_until_stopped`],
//! every port chosen by the system, on SQLite files in a temporary directory or on two
//! fresh PostgreSQL databases (one per service), with the offline model.

use std::{path::Path, time::Duration};

use clap::Parser;
use fabula::Addresses;
use fabula_testkit::{Backend, PostgresDb, Server, postgres_url};
use tempfile::TempDir;

/// The administrator every test stack is started with.
pub const ADMIN_USERNAME: &str = "admin";
pub const ADMIN_PASSWORD: &str = "the administrator's password";

/// A running stack; stopped (and its databases dropped) when dropped. A stack that
/// ended with an error fails the test.
pub struct Running {
    pub addresses: Addresses,
    server: Server,
    /// The command line it was started with.
    args: Vec<String>,
    _data: TempDir,
    _databases: Vec<PostgresDb>,
}

/// Starts a stack on `backend`.
pub async fn start(backend: Backend) -> Running {
    start_with(backend, &[]).await
}

/// Starts a stack on `backend` with `extra` command-line flags after the test's own.
pub async fn start_with(backend: Backend, extra: &[&str]) -> Running {
    let data = tempfile::tempdir().expect("a temporary directory");
    let (story_url, worker_url, databases) = match backend {
        Backend::Sqlite => (sqlite_url(data.path(), "story.db"), sqlite_url(data.path(), "worker.db"), Vec::new()),
        Backend::Postgres => {
            let admin = postgres_url().expect("the PostgreSQL variants run only when it is configured");
            let story = PostgresDb::create(admin.clone()).await;
            let worker = PostgresDb::create(admin).await;
            (story.url(), worker.url(), vec![story, worker])
        }
    };
    let data_dir = data.path().to_str().expect("a UTF-8 temporary path");
    let public_key = data.path().join(fabula_runtime::keys::ACCOUNTS_PUBLIC_KEY_FILE);
    let public_key = public_key.to_str().expect("a UTF-8 temporary path");
    let mut args = vec![
        "fabula",
        "--data-dir",
        data_dir,
        "--story-listen",
        "127.0.0.1:0",
        "--worker-listen",
        "127.0.0.1:0",
        "--gateway-listen",
        "127.0.0.1:0",
        "--story-database-url",
        &story_url,
        "--worker-database-url",
        &worker_url,
        "--token-public-key-file",
        public_key,
        "--gateway-token-public-key-file",
        public_key,
        "--admin-username",
        ADMIN_USERNAME,
        "--admin-password",
        ADMIN_PASSWORD,
        "--worker-retry-base",
        "50ms",
        "--gateway-rate-limits-off",
    ];
    args.extend_from_slice(extra);
    let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
    let (addresses, server) = launch(&args).await;
    Running { addresses, server, args, _data: data, _databases: databases }
}

/// Parses `args` as `cargo run` would and serves the stack they describe until `stop`.
async fn launch(args: &[String]) -> (Addresses, Server) {
    let settings = fabula::Settings::try_parse_from(args).expect("the test's flags parse");
    let stack = fabula::build(settings).await.expect("the stack starts");
    let addresses = stack.addresses();
    (addresses, Server::spawn("the stack", |shutdown| stack.run_until_stopped(shutdown)))
}

/// An HTTP client for the gateway. reqwest is built without a TLS crypto provider of
/// its own and wants one installed even for plain HTTP.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("an HTTP client")
}

fn sqlite_url(dir: &Path, file: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.join(file).display())
}

impl Running {
    /// The gateway's base URL, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addresses.gateway)
    }

    /// The `http://` URL of story-service's gRPC port.
    pub fn story_url(&self) -> String {
        format!("http://{}", self.addresses.story)
    }

    /// The `http://` URL of gpt-worker's gRPC port.
    pub fn worker_url(&self) -> String {
        format!("http://{}", self.addresses.worker)
    }

    /// Stops the stack as Ctrl-C would and asserts that every part stopped cleanly.
    pub async fn stop(mut self) {
        self.stop_cleanly().await;
    }

    /// Stops the stack cleanly and starts it again with the same command line, on the
    /// same files and databases: a second `cargo run`. It listens on new ports.
    pub async fn restart(&mut self) {
        self.stop_cleanly().await;
        (self.addresses, self.server) = launch(&self.args).await;
    }

    async fn stop_cleanly(&mut self) {
        tokio::time::timeout(Duration::from_secs(30), self.server.stop()).await.expect("the stack stops within 30 s");
    }
}
