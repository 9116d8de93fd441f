//! gpt-worker's test harness, on the shared test kit (`fabula_testkit`): story-service
//! and workers on loopback ([`fabula_testkit::Stack`]), each on a database of the test's
//! own (a new SQLite file, or a new PostgreSQL database named by a UUID), with its
//! clients and users; and what only the worker's tests need: workers that crash or run
//! as processes, jobs submitted and followed, and the rows of the job database.
//!
//! Write each test as `async fn name(backend: Backend)` and list it in
//! [`both_databases!`], which makes a `sqlite::name` and a `postgres::name` test of it.
//! The PostgreSQL variants need `FABULA_TEST_POSTGRES_URL` (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`); without it they say so loudly and pass.

use std::{
    ops::{Deref, DerefMut},
    sync::mpsc as std_mpsc,
    thread::JoinHandle as ThreadHandle,
    time::{Duration, Instant},
};

use fabula_contracts::pb::{
    jobs::{
        Apply, CreateJobRequest, Job, JobSpec, JobState, JobUpdate, Paraphrase, WaitJobRequest, WatchJobRequest,
        job_service_client::JobServiceClient, job_spec::Kind, job_update,
    },
    story::{Story, Visibility, World},
};
use fabula_testkit::process::ServiceProcess;
use gpt_worker::Settings;
use sqlx::Row;
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub use fabula_testkit::{
    Backend, BadInput, TestUser, Worker, as_caller, authed, both_databases, connect, expect_code, expect_field_within,
    expect_invalid, expect_short_answer, jobs_client,
};

/// The longest a test waits for a job to finish.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// A gpt-worker on a runtime of its own in a thread of its own, as if in another
/// process: [`CrashableWorker::kill`] drops the runtime, and with it every task and
/// connection, writing nothing more — the worker dies holding its leases.
pub struct CrashableWorker {
    channel: Channel,
    kill: Option<std_mpsc::Sender<()>>,
    thread: Option<ThreadHandle<()>>,
}

impl CrashableWorker {
    pub fn jobs(&self) -> JobServiceClient<Channel> {
        jobs_client(self.channel.clone())
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
/// keys), the workers sharing one job database ([`fabula_testkit::Stack`]), and the
/// steps of a job test. Dropping it stops them all and removes the databases.
pub struct Stack(fabula_testkit::Stack);

/// Starts story-service and one worker on `backend` with the test settings.
pub async fn spawn_stack(backend: Backend) -> Stack {
    spawn_stack_with(backend, |_| {}).await
}

/// Starts story-service and one worker on `backend`, the worker's settings changed by `configure`.
pub async fn spawn_stack_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> Stack {
    Stack(fabula_testkit::Stack::spawn_with_worker(backend, configure).await)
}

/// Starts story-service and makes the job database on `backend`, but starts no worker.
pub async fn spawn_services(backend: Backend) -> Stack {
    Stack(fabula_testkit::Stack::spawn(backend).await)
}

impl Deref for Stack {
    type Target = fabula_testkit::Stack;

    fn deref(&self) -> &fabula_testkit::Stack {
        &self.0
    }
}

impl DerefMut for Stack {
    fn deref_mut(&mut self) -> &mut fabula_testkit::Stack {
        &mut self.0
    }
}

impl Stack {
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
        CrashableWorker { channel: connect(addr).await, kill: Some(kill), thread: Some(thread) }
    }

    /// Starts a gpt-worker process on the same job database with the settings of
    /// [`fabula_testkit::Stack::worker_settings`], on a free loopback port, and waits
    /// until it serves.
    pub async fn spawn_worker_process(&self, configure: impl FnOnce(&mut Settings)) -> WorkerProcess {
        let settings = self.worker_settings(configure);
        let program = env!("CARGO_BIN_EXE_gpt-worker");
        let process = ServiceProcess::start("gpt-worker", program, "fabula.jobs.v1.JobService", |addr| {
            settings_env(&Settings { listen: addr, ..settings.clone() })
        })
        .await;
        WorkerProcess { channel: connect(process.addr).await, _process: process }
    }

    /// A JobService client of the first worker.
    pub fn jobs(&self) -> JobServiceClient<Channel> {
        self.first_worker().jobs()
    }

    /// The first worker, to stop it.
    pub fn take_worker(&mut self) -> Worker {
        self.worker.take().expect("the stack started a worker")
    }

    /// Every stored update of job `id`, decoded, in order.
    pub async fn stored_updates(&self, id: &str) -> Vec<JobUpdate> {
        let rows = sqlx::query("SELECT payload FROM job_updates WHERE job_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(self.jobs_database.pool().await)
            .await
            .expect("read the job's updates");
        rows.iter()
            .map(|row| gpt_worker::store::decode(&row.try_get::<String, _>(0).expect("a payload")).expect("an update"))
            .collect()
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

    /// Job `id`'s row as stored, or `None` when there is none.
    pub async fn stored_job(&self, id: &str) -> Option<StoredJob> {
        let row = sqlx::query(
            "SELECT state, attempts, output, error_code, lease_owner, lease_expires, run_after FROM jobs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.jobs_database.pool().await)
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
        .execute(self.jobs_database.pool().await)
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

/// Submits `kind` as `user` through `jobs`.
pub async fn submit_to(jobs: &mut JobServiceClient<Channel>, user: &TestUser, kind: Kind) -> Job {
    submit_spec_to(jobs, user, auto(kind)).await
}

/// A spec of `kind` that applies what the job finds at once (`apply: AUTO`): the
/// tests of the queue and of the kinds check what jobs write.
pub fn auto(kind: Kind) -> JobSpec {
    JobSpec { kind: Some(kind), apply: Apply::Auto.into() }
}

/// Submits `spec` as it is as `user` through `jobs`; returns the QUEUED job.
pub async fn submit_spec_to(jobs: &mut JobServiceClient<Channel>, user: &TestUser, spec: JobSpec) -> Job {
    let request = CreateJobRequest { spec: Some(spec), request_id: String::new() };
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

/// A gpt-worker in an OS process of its own, run from the crate's binary with its
/// settings as environment variables, as a deployment runs replicas ([`ServiceProcess`]).
pub struct WorkerProcess {
    channel: Channel,
    /// Killed when dropped.
    _process: ServiceProcess,
}

impl WorkerProcess {
    pub fn jobs(&self) -> JobServiceClient<Channel> {
        jobs_client(self.channel.clone())
    }
}

/// A private world named `name` with `description`.
pub fn private_world(name: &str, description: &str) -> World {
    World {
        name: name.into(),
        description: description.into(),
        visibility: Visibility::Private.into(),
        ..World::default()
    }
}

/// A private story titled `title` with `content`.
pub fn private_story(title: &str, content: &str) -> Story {
    Story { title: title.into(), content: content.into(), visibility: Visibility::Private.into(), ..Story::default() }
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
