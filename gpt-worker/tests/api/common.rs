//! The integration-test harness: starts a real story-service (on SQLite) and one or
//! more gpt-workers on loopback, each worker on a job database of the test's own (a
//! new SQLite file, or a new PostgreSQL database named by a UUID), and hands out
//! typed gRPC clients, users with model access, worlds and stories.
//!
//! Write each test as `async fn name(backend: Backend)` and list it in
//! [`both_databases!`], which makes a `sqlite::name` and a `postgres::name` test of it.
//! The PostgreSQL variants need `FABULA_TEST_POSTGRES_URL` (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`); without it they say so loudly and pass.
#![allow(dead_code)]

use std::{
    io::Write,
    net::SocketAddr,
    sync::mpsc as std_mpsc,
    thread::JoinHandle as ThreadHandle,
    time::{Duration, Instant},
};

use fabula_contracts::pb::{
    accounts::{LoginRequest, RegisterRequest, UpdateUserRequest, User, account_service_client::AccountServiceClient},
    jobs::{
        CreateJobRequest, GetJobRequest, Job, JobSpec, JobState, JobUpdate, Paraphrase, WaitJobRequest,
        WatchJobRequest, job_service_client::JobServiceClient, job_spec::Kind, job_update,
    },
    story::{
        CreateStoryRequest, CreateWorldRequest, Story, Visibility, World, entity_service_client::EntityServiceClient,
        event_service_client::EventServiceClient, location_service_client::LocationServiceClient,
        revision_service_client::RevisionServiceClient, story_service_client::StoryServiceClient,
        world_service_client::WorldServiceClient,
    },
};
use fabula_runtime::config::Secret;
use gpt_worker::Settings;
use prost_types::FieldMask;
use sqlx::{AnyPool, Row};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub const ADMIN_USERNAME: &str = "root_admin";
pub const ADMIN_PASSWORD: &str = "admin password 123";
/// The password of every registered test user.
pub const PASSWORD: &str = "correct horse battery";
/// The longest a test waits for a job to finish.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(30);

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

/// A running gpt-worker.
pub struct WorkerHandle {
    pub addr: SocketAddr,
    channel: Channel,
    running: Server,
}

impl WorkerHandle {
    pub fn jobs(&self) -> JobServiceClient<Channel> {
        JobServiceClient::new(self.channel.clone())
    }

    /// Resolves the worker's shutdown future (SIGTERM) and waits until it has stopped.
    pub async fn shutdown(mut self) {
        self.running.stop().await;
    }
}

/// A gpt-worker on a runtime of its own in a thread of its own, as if in another
/// process: [`CrashableWorker::kill`] drops the runtime, and with it every task and
/// connection, writing nothing more — the worker dies holding its leases.
pub struct CrashableWorker {
    pub addr: SocketAddr,
    channel: Channel,
    kill: Option<std_mpsc::Sender<()>>,
    thread: Option<ThreadHandle<()>>,
}

impl CrashableWorker {
    pub fn jobs(&self) -> JobServiceClient<Channel> {
        JobServiceClient::new(self.channel.clone())
    }

    pub fn kill(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        drop(self.kill.take());
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the worker's thread ends");
        }
    }
}

impl Drop for CrashableWorker {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// story-service and gpt-workers sharing one data directory (and so the development
/// keys), the workers sharing one job database. Dropping it stops them all and
/// removes the databases.
pub struct Stack {
    pub backend: Backend,
    /// The URL of the workers' job database.
    pub jobs_database_url: String,
    pub story_addr: SocketAddr,
    story_channel: Channel,
    /// The first worker, if the stack started one; tests may start more with
    /// [`Stack::spawn_worker`].
    worker: Option<WorkerHandle>,
    jobs_pool: tokio::sync::OnceCell<AnyPool>,
    story: Server,
    // Dropped after the servers are told to stop, in this order.
    jobs_database: TestDatabase,
    dir: TempDir,
}

/// Starts story-service and one worker on `backend` with the test settings.
pub async fn spawn_stack(backend: Backend) -> Stack {
    spawn_stack_with(backend, |_| {}).await
}

/// Starts story-service and one worker on `backend`, the worker's settings changed by `configure`.
pub async fn spawn_stack_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> Stack {
    let mut stack = spawn_services(backend).await;
    stack.worker = Some(stack.spawn_worker(configure).await);
    stack
}

/// Starts story-service and makes the job database on `backend`, but starts no worker.
pub async fn spawn_services(backend: Backend) -> Stack {
    if let Ok(filter) = std::env::var("FABULA_TEST_LOG") {
        // The services' own logs, for a failing test: FABULA_TEST_LOG=gpt_worker=debug.
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Tests stop story-service and start it again on this address.
    let (story_addr, story) = spawn_story_service(&dir, fabula_testkit::restartable_address()).await;
    let jobs_database = TestDatabase::create(backend, dir.path(), "worker").await;
    let jobs_database_url = jobs_database.url.clone();
    Stack {
        backend,
        jobs_database_url,
        story_addr,
        story_channel: connect(story_addr).await,
        worker: None,
        jobs_pool: tokio::sync::OnceCell::new(),
        story,
        jobs_database,
        dir,
    }
}

/// The test settings of a worker on `jobs_database_url` beside the story-service at
/// `story_addr`, sharing its data directory, changed by `configure`.
fn worker_settings(
    jobs_database_url: &str,
    story_addr: SocketAddr,
    dir: &TempDir,
    configure: impl FnOnce(&mut Settings),
) -> Settings {
    let mut settings = Settings::for_tests(jobs_database_url, format!("http://{story_addr}"), dir.path());
    configure(&mut settings);
    settings
}

/// Builds and runs a worker on the test's runtime.
async fn start_worker(settings: Settings) -> WorkerHandle {
    let app = gpt_worker::build(settings).await.expect("gpt-worker builds");
    let addr = app.local_addr();
    let running = Server::spawn("gpt-worker", |shutdown| app.run_until_stopped(shutdown));
    WorkerHandle { addr, channel: connect(addr).await, running }
}

/// Starts story-service on `listen` with its SQLite database in `dir` (made when new),
/// with the development keys there.
async fn spawn_story_service(dir: &TempDir, listen: SocketAddr) -> (SocketAddr, Server) {
    let database_url = format!("sqlite://{}/story.db?mode=rwc", dir.path().display());
    let mut settings = story_service::Settings::for_tests(database_url, dir.path());
    settings.listen = listen;
    settings.admin_username = Some(ADMIN_USERNAME.into());
    settings.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    let app = story_service::build(settings).await.expect("story-service builds");
    let addr = app.local_addr();
    let running = Server::spawn("story-service", |shutdown| app.run_until_stopped(shutdown));
    (addr, running)
}

/// A new HTTP/2 connection to `addr`.
pub async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a valid URI")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect to the service")
}

impl Stack {
    /// The settings of another worker of this stack: the test settings, changed by `configure`.
    pub fn worker_settings(&self, configure: impl FnOnce(&mut Settings)) -> Settings {
        worker_settings(&self.jobs_database_url, self.story_addr, &self.dir, configure)
    }

    /// Starts another worker on the same job database.
    pub async fn spawn_worker(&self, configure: impl FnOnce(&mut Settings)) -> WorkerHandle {
        start_worker(self.worker_settings(configure)).await
    }

    /// Starts a worker on the same job database in a runtime of its own, to be killed.
    pub async fn spawn_crashable_worker(&self, configure: impl FnOnce(&mut Settings)) -> CrashableWorker {
        let settings = self.worker_settings(configure);
        let (started, addr) = oneshot::channel();
        let (kill, killed) = std_mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("a runtime");
            let app = runtime.block_on(gpt_worker::build(settings)).expect("gpt-worker builds");
            let _ = started.send(app.local_addr());
            runtime.spawn(app.run_until_stopped(std::future::pending()));
            let _ = killed.recv();
            drop(runtime);
        });
        let addr = addr.await.expect("the crashable worker starts");
        CrashableWorker { addr, channel: connect(addr).await, kill: Some(kill), thread: Some(thread) }
    }

    /// A JobService client of the first worker.
    pub fn jobs(&self) -> JobServiceClient<Channel> {
        self.worker.as_ref().expect("the stack started a worker").jobs()
    }

    /// The first worker, to stop it.
    pub fn take_worker(&mut self) -> WorkerHandle {
        self.worker.take().expect("the stack started a worker")
    }

    pub fn accounts(&self) -> AccountServiceClient<Channel> {
        AccountServiceClient::new(self.story_channel.clone())
    }

    pub fn worlds(&self) -> WorldServiceClient<Channel> {
        WorldServiceClient::new(self.story_channel.clone())
    }

    pub fn stories(&self) -> StoryServiceClient<Channel> {
        StoryServiceClient::new(self.story_channel.clone())
    }

    pub fn entities(&self) -> EntityServiceClient<Channel> {
        EntityServiceClient::new(self.story_channel.clone())
    }

    pub fn locations(&self) -> LocationServiceClient<Channel> {
        LocationServiceClient::new(self.story_channel.clone())
    }

    pub fn events(&self) -> EventServiceClient<Channel> {
        EventServiceClient::new(self.story_channel.clone())
    }

    pub fn revisions(&self) -> RevisionServiceClient<Channel> {
        RevisionServiceClient::new(self.story_channel.clone())
    }

    /// A direct connection to the job database, to check rows.
    pub async fn jobs_db(&self) -> &AnyPool {
        self.jobs_pool
            .get_or_init(|| async {
                sqlx::any::install_default_drivers();
                sqlx::any::AnyPoolOptions::new()
                    .max_connections(2)
                    .connect(&self.jobs_database_url)
                    .await
                    .expect("connect to the job database")
            })
            .await
    }

    /// Every stored update of job `id`, decoded, in order.
    pub async fn stored_updates(&self, id: &str) -> Vec<JobUpdate> {
        let rows = sqlx::query("SELECT payload FROM job_updates WHERE job_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(self.jobs_db().await)
            .await
            .expect("read the job's updates");
        rows.iter()
            .map(|row| gpt_worker::store::decode(&row.try_get::<String, _>(0).expect("a payload")).expect("an update"))
            .collect()
    }

    /// Registers `username` (email `<username>@example.test`, password [`PASSWORD`]).
    pub async fn register(&self, username: &str) -> TestUser {
        let email = format!("{}@example.test", username.to_lowercase());
        let request = RegisterRequest { username: username.into(), email, password: PASSWORD.into() };
        let response = self.accounts().register(request).await.expect("register").into_inner();
        let user = response.user.expect("Register returns the user");
        TestUser { id: user.id, username: user.username, token: response.access_token }
    }

    /// Registers `username` and has the administrator grant them model access.
    pub async fn register_with_model_access(&self, username: &str) -> TestUser {
        let user = self.register(username).await;
        self.set_model_access(&user, true).await;
        user
    }

    /// Signs in the administrator the stack was started with.
    pub async fn admin(&self) -> TestUser {
        let request = LoginRequest { login: ADMIN_USERNAME.into(), password: ADMIN_PASSWORD.into() };
        let response = self.accounts().login(request).await.expect("the administrator signs in").into_inner();
        let user = response.user.expect("Login returns the user");
        TestUser { id: user.id, username: user.username, token: response.access_token }
    }

    /// The administrator grants or revokes `user`'s model access (UpdateUser, mask `gpt_enabled`).
    pub async fn set_model_access(&self, user: &TestUser, enabled: bool) {
        let admin = self.admin().await;
        let request = UpdateUserRequest {
            user: Some(User { id: user.id.clone(), gpt_enabled: enabled, ..User::default() }),
            update_mask: Some(FieldMask { paths: vec!["gpt_enabled".into()] }),
        };
        let updated = self.accounts().update_user(authed(request, &admin.token)).await.expect("update the user");
        assert_eq!(updated.into_inner().gpt_enabled, enabled, "the administrator set model access");
    }

    /// Creates a private world of `owner` with `description`.
    pub async fn create_world(&self, owner: &TestUser, name: &str, description: &str) -> World {
        let world = World {
            name: name.into(),
            description: description.into(),
            visibility: Visibility::Private.into(),
            ..World::default()
        };
        let request = CreateWorldRequest { world: Some(world), request_id: String::new() };
        self.worlds().create_world(authed(request, &owner.token)).await.expect("create a world").into_inner()
    }

    /// Creates a private story of `author` in `world_id` with `content`.
    pub async fn create_story(&self, author: &TestUser, world_id: &str, title: &str, content: &str) -> Story {
        let story = Story {
            title: title.into(),
            content: content.into(),
            visibility: Visibility::Private.into(),
            ..Story::default()
        };
        let request = CreateStoryRequest { world_id: world_id.into(), story: Some(story), request_id: String::new() };
        self.stories().create_story(authed(request, &author.token)).await.expect("create a story").into_inner()
    }

    /// Submits `kind` as `user` through the first worker.
    pub async fn submit(&self, user: &TestUser, kind: Kind) -> Job {
        submit_to(&mut self.jobs(), user, kind).await
    }

    /// Job `id` once it is finished, as `user` sees it through the first worker.
    pub async fn wait(&self, user: &TestUser, id: &str) -> Job {
        wait_for(&mut self.jobs(), user, id).await
    }

    /// Submits `kind` and waits until it is finished.
    pub async fn run_job(&self, user: &TestUser, kind: Kind) -> Job {
        let job = self.submit(user, kind).await;
        self.wait(user, &job.id).await
    }

    /// Job `id` as `user` sees it now.
    pub async fn get(&self, user: &TestUser, id: &str) -> Job {
        self.jobs()
            .get_job(authed(GetJobRequest { id: id.into() }, &user.token))
            .await
            .expect("get the job")
            .into_inner()
    }

    /// Waits until job `id` is RUNNING (its runner wrote so).
    pub async fn wait_until_running(&self, user: &TestUser, id: &str) {
        let running = |kind: &job_update::Kind| *kind == job_update::Kind::State(JobState::Running.into());
        self.watch_until(user, id, "run", running).await;
    }

    /// Waits until job `id` is RUNNING and has written output: its model is streaming.
    pub async fn wait_until_streaming(&self, user: &TestUser, id: &str) {
        self.watch_until(user, id, "stream", |kind| matches!(kind, job_update::Kind::OutputDelta(_))).await;
    }

    /// Watches job `id` until an update `matches`; panics if it finishes first.
    async fn watch_until(&self, user: &TestUser, id: &str, what: &str, matches: impl Fn(&job_update::Kind) -> bool) {
        let request = WatchJobRequest { id: id.into(), after_seq: 0 };
        let mut updates =
            self.jobs().watch_job(authed(request, &user.token)).await.expect("watch the job").into_inner();
        let watch = async {
            loop {
                match updates.message().await.expect("the watch goes on").and_then(|u| u.kind) {
                    Some(kind) if matches(&kind) => return,
                    Some(job_update::Kind::Finished(job)) => panic!("job {id} finished before it did {what}: {job:?}"),
                    Some(_) => {}
                    None => panic!("the watch of job {id} ended before it did {what}"),
                }
            }
        };
        tokio::time::timeout(JOB_TIMEOUT, watch).await.unwrap_or_else(|_| panic!("job {id} did not {what} in time"));
    }
}

/// Submits `kind` as `user` through `jobs`.
pub async fn submit_to(jobs: &mut JobServiceClient<Channel>, user: &TestUser, kind: Kind) -> Job {
    let request = CreateJobRequest { spec: Some(JobSpec { kind: Some(kind) }), request_id: String::new() };
    let job = jobs.create_job(authed(request, &user.token)).await.expect("create the job").into_inner();
    assert_eq!(job.state(), JobState::Queued, "a new job is QUEUED");
    job
}

/// Job `id` once finished, through `jobs` (WaitJob, re-asked until the job ends).
pub async fn wait_for(jobs: &mut JobServiceClient<Channel>, user: &TestUser, id: &str) -> Job {
    let deadline = Instant::now() + JOB_TIMEOUT;
    loop {
        let request = WaitJobRequest { id: id.into(), timeout: Some(prost_types::Duration { seconds: 10, nanos: 0 }) };
        let job = jobs.wait_job(authed(request, &user.token)).await.expect("wait for the job").into_inner();
        if is_finished(&job) {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} did not finish within {JOB_TIMEOUT:?}: {job:?}");
    }
}

pub fn is_finished(job: &Job) -> bool {
    matches!(job.state(), JobState::Succeeded | JobState::Failed | JobState::Cancelled)
}

/// A Paraphrase of `text`.
pub fn paraphrase(text: &str) -> Kind {
    Kind::Paraphrase(Paraphrase { text: text.into(), mode: String::new() })
}

/// A registered user and their access token.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub token: String,
}

/// Makes a `postgres::<test>` of each `async fn <test>()` that only PostgreSQL can run
/// (several worker processes on one queue; SQLite is a single-process queue). Without
/// `FABULA_TEST_POSTGRES_URL` it says so loudly and passes, like [`both_databases!`].
macro_rules! postgres_only {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if fabula_testkit::skip_without_postgres(concat!(module_path!(), "::", stringify!($name))) {
                        return;
                    }
                    super::$name().await;
                }
            )*
        }
    };
}

/// The longest a worker process may take to start serving.
const PROCESS_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How many ports a worker process is tried on before giving up (another process may
/// take the free port picked for it before it binds).
const PROCESS_START_TRIES: usize = 3;
/// What the worker logs once it has bound its listener.
const LISTENING_LOG: &str = "gpt-worker listening";

/// A gpt-worker in an OS process of its own, run from the crate's binary with its
/// settings as environment variables, as a deployment runs replicas. Dropping it kills
/// the process, also when the test panics; a panicking test prints the end of its log.
pub struct WorkerProcess {
    pub addr: SocketAddr,
    channel: Channel,
    child: ChildGuard,
}

impl WorkerProcess {
    pub fn jobs(&self) -> JobServiceClient<Channel> {
        JobServiceClient::new(self.channel.clone())
    }

    /// Everything the process has logged so far.
    pub fn log(&self) -> String {
        self.child.log()
    }
}

/// A child process that is killed and reaped when dropped, with its stdout and stderr
/// in a temporary file removed with it.
struct ChildGuard {
    child: std::process::Child,
    log: tempfile::NamedTempFile,
}

impl ChildGuard {
    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
            let _ = writeln!(
                std::io::stderr(),
                "--- the last lines of gpt-worker process {} ---\n{}\n---",
                self.child.id(),
                tail.join("\n")
            );
        }
    }
}

impl Stack {
    /// Starts a gpt-worker process on the same job database with the settings of
    /// [`Stack::worker_settings`], on a free loopback port, and waits until it serves.
    pub async fn spawn_worker_process(&self, configure: impl FnOnce(&mut Settings)) -> WorkerProcess {
        let settings = self.worker_settings(configure);
        let mut failures = Vec::new();
        for _ in 0..PROCESS_START_TRIES {
            match start_worker_process(settings.clone()).await {
                Ok(process) => return process,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("gpt-worker did not start:\n{}", failures.join("\n---\n"));
    }

    /// Stops story-service as a restart would (shutdown signal, then drain) and waits
    /// until it has stopped; its address then refuses connections.
    pub async fn stop_story_service(&mut self) {
        self.story.stop().await;
    }

    /// Starts story-service again, on its old address and database, after
    /// [`Stack::stop_story_service`].
    pub async fn restart_story_service(&mut self) {
        let (addr, story) = spawn_story_service(&self.dir, self.story_addr).await;
        assert_eq!(addr, self.story_addr, "story-service is back on its address");
        self.story = story;
        self.story_channel = connect(addr).await;
    }

    /// Job `id`'s row as stored, or `None` when there is none.
    pub async fn stored_job(&self, id: &str) -> Option<StoredJob> {
        let row = sqlx::query(
            "SELECT state, attempts, output, error_code, lease_owner, lease_expires, run_after FROM jobs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.jobs_db().await)
        .await
        .expect("read the job's row")?;
        let get = "a column of the job's row";
        Some(StoredJob {
            state: row.try_get(0).expect(get),
            attempts: row.try_get(1).expect(get),
            output: row.try_get(2).expect(get),
            error_code: row.try_get(3).expect(get),
            lease_owner: row.try_get(4).expect(get),
            lease_expires: row.try_get(5).expect(get),
            run_after: row.try_get(6).expect(get),
        })
    }

    /// Stores a copy of finished job `id` under a new id, ended at the epoch: long past
    /// any retention, so the next sweep removes it. Returns the copy's id.
    pub async fn plant_finished_copy(&self, id: &str) -> String {
        let copy = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO jobs (id, owner_id, kind, spec, state, max_attempts, run_after, create_time, end_time) \
             SELECT $1, owner_id, kind, spec, state, max_attempts, run_after, 0, 1 FROM jobs WHERE id = $2",
        )
        .bind(&copy)
        .bind(id)
        .execute(self.jobs_db().await)
        .await
        .expect("copy the job's row");
        assert!(self.stored_job(&copy).await.is_some_and(|row| row.is_finished()), "job {id} is finished");
        copy
    }

    /// Job `id`'s row once `matches` holds for it, looked at every few milliseconds; panics
    /// when the job finished or its row is gone without matching, or after [`JOB_TIMEOUT`].
    /// Needs no service, only the database.
    pub async fn wait_for_row(&self, id: &str, what: &str, matches: impl Fn(&StoredJob) -> bool) -> StoredJob {
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            let row = self.stored_job(id).await.unwrap_or_else(|| panic!("job {id} is gone before it did {what}"));
            if matches(&row) {
                return row;
            }
            assert!(!row.is_finished(), "job {id} finished before it did {what}: {row:?}");
            assert!(Instant::now() < deadline, "job {id} did not {what} within {JOB_TIMEOUT:?}: {row:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The columns of a job row that say who holds it and how it went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredJob {
    pub state: String,
    pub attempts: i64,
    pub output: String,
    pub error_code: Option<String>,
    pub lease_owner: Option<String>,
    /// Microseconds since the Unix epoch.
    pub lease_expires: Option<i64>,
    /// Microseconds since the Unix epoch.
    pub run_after: i64,
}

impl StoredJob {
    /// True once the job has ended for good.
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "SUCCEEDED" | "FAILED" | "CANCELLED")
    }
}

/// Starts the gpt-worker binary with `settings` on a port free a moment ago; `Err` with
/// its log when it exited before serving (its port was taken meanwhile, say).
async fn start_worker_process(mut settings: Settings) -> Result<WorkerProcess, String> {
    settings.listen = free_loopback_port();
    let log = tempfile::Builder::new().prefix("gpt-worker-").suffix(".log").tempfile().expect("a log file");
    let output = || log.as_file().try_clone().expect("share the log file");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_gpt-worker"))
        // Only the settings given here: nothing from the environment the tests run in.
        .env_clear()
        .envs(settings_env(&settings))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(output())
        .stderr(output())
        .spawn()
        .expect("start the gpt-worker binary");
    let mut child = ChildGuard { child, log };
    let addr = settings.listen;
    let deadline = Instant::now() + PROCESS_START_TIMEOUT;
    loop {
        if let Some(status) = child.child.try_wait().expect("look at the worker process") {
            return Err(format!("gpt-worker on {addr} exited with {status}:\n{}", child.log()));
        }
        // The log line says this process bound the port, not another that took it meanwhile.
        if child.log().contains(LISTENING_LOG)
            && fabula_runtime::server::is_serving(addr, "fabula.jobs.v1.JobService", Duration::from_secs(1)).await
        {
            return Ok(WorkerProcess { addr, channel: connect(addr).await, child });
        }
        assert!(Instant::now() < deadline, "gpt-worker on {addr} did not serve within {PROCESS_START_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A loopback port nothing listened on a moment ago, for a process that cannot report
/// the port it bound.
fn free_loopback_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("a bound listener has an address")
}

/// `settings` as the environment variables the gpt-worker binary reads (`gpt-worker
/// --help`). Every field is named, so a new setting does not compile until it is passed on.
fn settings_env(settings: &Settings) -> Vec<(&'static str, String)> {
    let Settings {
        listen,
        database_url,
        database_connections,
        story_service_url,
        token_public_key_file,
        private_key_file,
        llm,
        queue,
    } = settings;
    let gpt_worker::config::LlmSettings {
        base_url,
        api_key,
        model,
        connect_timeout,
        request_timeout,
        idle_timeout,
        offline_pace,
    } = llm;
    let gpt_worker::config::QueueSettings {
        runners,
        lease,
        max_attempts,
        retry_base,
        retry_max,
        shutdown_grace,
        retention,
        active_jobs_per_user,
        daily_jobs_per_user,
    } = queue;
    let millis = |duration: &Duration| format!("{}ms", duration.as_millis());
    let mut env = vec![
        ("WORKER_LISTEN", listen.to_string()),
        ("WORKER_DATABASE_URL", database_url.clone()),
        ("WORKER_DATABASE_CONNECTIONS", database_connections.to_string()),
        ("STORY_SERVICE_URL", story_service_url.clone()),
        ("WORKER_TOKEN_PUBLIC_KEY_FILE", token_public_key_file.display().to_string()),
        ("WORKER_PRIVATE_KEY_FILE", private_key_file.display().to_string()),
        ("LLM_MODEL", model.clone()),
        ("LLM_CONNECT_TIMEOUT", millis(connect_timeout)),
        ("LLM_REQUEST_TIMEOUT", millis(request_timeout)),
        ("LLM_IDLE_TIMEOUT", millis(idle_timeout)),
        ("LLM_OFFLINE_PACE", millis(offline_pace)),
        ("WORKER_RUNNERS", runners.to_string()),
        ("WORKER_LEASE", millis(lease)),
        ("WORKER_MAX_ATTEMPTS", max_attempts.to_string()),
        ("WORKER_RETRY_BASE", millis(retry_base)),
        ("WORKER_RETRY_MAX", millis(retry_max)),
        ("WORKER_SHUTDOWN_GRACE", millis(shutdown_grace)),
        ("WORKER_RETENTION", millis(retention)),
        ("WORKER_ACTIVE_JOBS_PER_USER", active_jobs_per_user.to_string()),
        ("WORKER_DAILY_JOBS_PER_USER", daily_jobs_per_user.to_string()),
    ];
    env.extend(base_url.clone().map(|url| ("LLM_BASE_URL", url)));
    env.extend(api_key.as_ref().map(|key| ("LLM_API_KEY", key.expose().to_owned())));
    env
}
