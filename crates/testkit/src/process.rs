//! Programs a test runs as child processes, their output in a log file of their own: a
//! command given a time budget ([`run_within`]), and a service binary started as it is
//! deployed, its settings in its environment ([`ServiceProcess`]).

use std::{
    io::Write,
    net::SocketAddr,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use tempfile::NamedTempFile;

/// The longest a service process may take to start serving.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How many ports a service process is tried on before giving up (another process may
/// take the free port picked for it before it binds).
const START_TRIES: usize = 3;
/// How many lines of its log a process that a failing test leaves behind prints.
const LOG_TAIL_LINES: usize = 40;

/// A child process with stdin closed and stdout and stderr together in a temporary
/// file, removed with it. Killed and reaped when dropped, if still running.
struct LoggedChild {
    child: Child,
    log: NamedTempFile,
}

impl LoggedChild {
    fn spawn(command: &mut Command) -> Self {
        let log = tempfile::Builder::new().prefix("fabula-test-").suffix(".log").tempfile().expect("a log file");
        let output = || log.as_file().try_clone().expect("share the log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(output())
            .stderr(output())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Its exit status once it has exited, or `None` when it still runs after `timeout`.
    /// It polls without blocking the test's runtime, which may serve what it talks to.
    async fn exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child process") {
                return Some(status);
            }
            if started.elapsed() > timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for LoggedChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `command` for at most `budget`, killing it past that: its exit status, `None`
/// when it was killed, and all it printed.
pub async fn run_within(mut command: Command, budget: Duration) -> (Option<ExitStatus>, String) {
    let mut child = LoggedChild::spawn(&mut command);
    let status = child.exit_within(budget).await;
    (status, child.log())
}

/// A service binary in an OS process of its own, started with only the environment a
/// test gives it (its settings), `RUST_LOG=info` and no colours, as a deployment runs
/// it. Killed when dropped, also when the test panics; a panicking test prints the end
/// of its log.
pub struct ServiceProcess {
    pub addr: SocketAddr,
    name: &'static str,
    child: LoggedChild,
}

impl ServiceProcess {
    /// Starts `program` (`env!("CARGO_BIN_EXE_<name>")`) on a free loopback port with
    /// the environment `env` makes for that address, and waits until it serves the gRPC
    /// service `grpc_service` there.
    pub async fn start(
        name: &'static str,
        program: &str,
        grpc_service: &str,
        env: impl Fn(SocketAddr) -> Vec<(&'static str, String)>,
    ) -> Self {
        let mut failures = Vec::new();
        for _ in 0..START_TRIES {
            let addr = free_loopback_port();
            let mut command = Command::new(program);
            command.env_clear().envs(env(addr)).env("RUST_LOG", "info").env("NO_COLOR", "1");
            let process = Self { addr, name, child: LoggedChild::spawn(&mut command) };
            match process.until_serving(grpc_service).await {
                Ok(process) => return process,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("{name} did not start:\n{}", failures.join("\n---\n"));
    }

    /// This process once it serves; `Err` with its log when it exited first (its port
    /// was taken meanwhile, say).
    async fn until_serving(mut self, grpc_service: &str) -> Result<Self, String> {
        let (addr, listening) = (self.addr, format!("{} listening", self.name));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.child.try_wait().expect("poll the service process") {
                return Err(format!("{} on {addr} exited with {status}:\n{}", self.name, self.log()));
            }
            // The log line says this process bound the port, not another that took it meanwhile.
            if self.log().contains(&listening)
                && fabula_runtime::server::is_serving(addr, grpc_service, Duration::from_secs(1)).await
            {
                return Ok(self);
            }
            assert!(Instant::now() < deadline, "{} on {addr} did not serve within {START_TIMEOUT:?}", self.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        self.child.log()
    }

    /// Sends it SIGTERM, as a container runtime stops it.
    pub fn terminate(&self) {
        let killed = Command::new("kill").args(["-TERM", &self.child.child.id().to_string()]).status();
        assert!(killed.expect("run kill").success(), "SIGTERM sent");
    }

    /// Its exit status once it has exited, or `None` when it still runs after `timeout`.
    pub async fn exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.child.exit_within(timeout).await
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
            let id = self.child.child.id();
            let _ = writeln!(std::io::stderr(), "--- the last lines of {} process {id} ---\n{tail}\n---", self.name);
        }
    }
}

/// A loopback port nothing listened on a moment ago, for a process that cannot report
/// the port it bound.
fn free_loopback_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("a bound listener has an address")
}
