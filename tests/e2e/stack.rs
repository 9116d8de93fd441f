//! Starts the whole stack the way `cargo run` does: the command line parsed into
//! [`fabula::Settings`], then [`fabula::build`] and [`fabula::Stack::run_until_stopped`],
//! every port chosen by the system, on SQLite files in a temporary directory or on two
//! fresh PostgreSQL databases (one per service), with the offline model.

use std::time::Duration;

use clap::Parser;
use fabula::Addresses;
use fabula_testkit::{Backend, Server, TestDatabase, rest::Rest};
use tempfile::TempDir;

/// The administrator every test stack is started with: the test kit's.
pub use fabula_testkit::{ADMIN_PASSWORD, ADMIN_USERNAME};

/// A running stack; stopped (and its databases dropped) when dropped. A stack that
/// ended with an error fails the test.
pub struct Running {
    pub addresses: Addresses,
    server: Server,
    /// The command line it was started with.
    args: Vec<String>,
    _databases: [TestDatabase; 2],
    _data: TempDir,
}

/// Starts a stack on `backend`.
pub async fn start(backend: Backend) -> Running {
    start_with(backend, &[]).await
}

/// Starts a stack on `backend` with `extra` command-line flags after the test's own
/// (replacing those it gives too).
pub async fn start_with(backend: Backend, extra: &[&str]) -> Running {
    let data = tempfile::tempdir().expect("a temporary directory");
    let databases = [
        TestDatabase::create(backend, data.path(), "story").await,
        TestDatabase::create(backend, data.path(), "worker").await,
    ];
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
        &databases[0].url,
        "--worker-database-url",
        &databases[1].url,
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
    // A flag of `extra` replaces the test's own (clap refuses a flag given twice).
    for flag in extra.iter().filter(|arg| arg.starts_with("--")) {
        if let Some(at) = args.iter().position(|arg| arg == flag) {
            let with_value = args.get(at + 1).is_some_and(|next| !next.starts_with("--"));
            args.drain(at..at + 1 + usize::from(with_value));
        }
    }
    args.extend_from_slice(extra);
    let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
    let (addresses, server) = launch(&args).await;
    Running { addresses, server, args, _databases: databases, _data: data }
}

/// Parses `args` as `cargo run` would and serves the stack they describe until `stop`.
async fn launch(args: &[String]) -> (Addresses, Server) {
    let settings = fabula::Settings::try_parse_from(args).expect("the test's flags parse");
    let stack = fabula::build(settings).await.expect("the stack starts");
    let addresses = stack.addresses();
    (addresses, Server::spawn("the stack", |shutdown| stack.run_until_stopped(shutdown)))
}

impl Running {
    /// The gateway's base URL, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addresses.gateway)
    }

    /// An anonymous REST client of the gateway.
    pub fn rest(&self) -> Rest {
        Rest::new(self.base_url())
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
