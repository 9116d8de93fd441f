//! A load generator for gpt-worker's benchmark (see BENCHMARKS.md and
//! bench/gpt-worker.sh).
//!
//! It signs in an administrator, registers `--concurrency` users with model access
//! (one per submission stream: a user's creates are serialised to count their
//! limits), then submits `--jobs` jobs of one kind, spread over the `--worker`
//! addresses, waits for every job to finish, and reports jobs per second and the
//! submit → RUNNING latency (each job's start time minus its create time, both
//! stamped by the worker).

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use fabula_contracts::pb::{
    accounts::{LoginRequest, RegisterRequest, UpdateUserRequest, User, account_service_client::AccountServiceClient},
    jobs::{
        AnalyzeStory, Apply, CreateJobRequest, Job, JobSpec, JobState, Paraphrase, WaitJobRequest,
        job_service_client::JobServiceClient, job_spec::Kind,
    },
    story::{
        CreateStoryRequest, CreateWorldRequest, Story, World, story_service_client::StoryServiceClient,
        world_service_client::WorldServiceClient,
    },
};
use prost_types::FieldMask;
use tonic::{Request, transport::Channel};

#[derive(Clone, Copy, ValueEnum)]
enum JobKind {
    Paraphrase,
    AnalyzeStory,
}

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    story: String,
    /// A worker's address; repeat for several processes sharing one queue.
    #[arg(long = "worker", default_value = "http://127.0.0.1:50052")]
    workers: Vec<String>,
    #[arg(long, default_value = "bench-admin")]
    admin: String,
    #[arg(long, default_value = "bench-admin-password")]
    admin_password: String,
    #[arg(long, value_enum, default_value = "paraphrase")]
    kind: JobKind,
    #[arg(long, default_value_t = 2000)]
    jobs: usize,
    /// Submissions in flight at once, one user each.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Jobs submitted per second at most, all streams together; 0 for as fast as
    /// possible. Latency is meaningful below the workers' capacity.
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// Unfinished jobs each user keeps at most, as a client living within the
    /// per-user limit of active jobs does: at the limit it waits for its oldest job
    /// before submitting the next. 0 for no bound.
    #[arg(long, default_value_t = 0)]
    in_flight: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let story = Channel::from_shared(args.story.clone())?.connect().await?;
    let mut users = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let token = user_with_model_access(&story, &args).await?;
        let spec = spec_for(args.kind, &story, &token).await?;
        users.push((token, spec));
    }
    tokio::time::sleep(Duration::from_millis(1100)).await; // statuses are cached for a second
    let mut workers = Vec::new();
    for url in &args.workers {
        workers.push(JobServiceClient::new(Channel::from_shared(url.clone())?.connect().await?));
    }
    let started = Instant::now();
    let pace = (args.rate > 0).then(|| Duration::from_secs_f64(args.concurrency as f64 / f64::from(args.rate)));
    let jobs = submit_all(&workers, &users, args.jobs, pace, args.in_flight).await?;
    let submitted = started.elapsed();
    let finished = wait_all(&workers[0], jobs).await?;
    let elapsed = started.elapsed();
    report(&finished, submitted, elapsed);
    Ok(())
}

/// A fresh user with model access, granted by the administrator.
async fn user_with_model_access(story: &Channel, args: &Args) -> anyhow::Result<String> {
    let mut accounts = AccountServiceClient::new(story.clone());
    let admin = accounts
        .login(LoginRequest { login: args.admin.clone(), password: args.admin_password.clone() })
        .await?
        .into_inner()
        .access_token;
    let name = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let registered = accounts
        .register(RegisterRequest {
            username: name.clone(),
            email: format!("{name}@bench.test"),
            password: "benchmark-password".into(),
        })
        .await?
        .into_inner();
    let user = User { id: registered.user.map(|u| u.id).unwrap_or_default(), gpt_enabled: true, ..Default::default() };
    let grant =
        UpdateUserRequest { user: Some(user), update_mask: Some(FieldMask { paths: vec!["gpt_enabled".into()] }) };
    accounts.update_user(authed(grant, &admin)).await?;
    Ok(registered.access_token)
}

async fn spec_for(kind: JobKind, story: &Channel, token: &str) -> anyhow::Result<JobSpec> {
    let kind = match kind {
        JobKind::Paraphrase => {
            Kind::Paraphrase(Paraphrase { text: "The dragon slept under the mountain.".into(), mode: "vivid".into() })
        }
        JobKind::AnalyzeStory => {
            let world = World { name: "Bench".into(), ..Default::default() };
            let world = WorldServiceClient::new(story.clone())
                .create_world(authed(CreateWorldRequest { world: Some(world), request_id: String::new() }, token))
                .await?
                .into_inner();
            let content = "Aria met Borin in Eldoria. They rode to Kestrel Keep, where Cael waited.".repeat(5);
            let story = StoryServiceClient::new(story.clone())
                .create_story(authed(
                    CreateStoryRequest {
                        world_id: world.id,
                        story: Some(Story { title: "Bench".into(), content, ..Default::default() }),
                        request_id: String::new(),
                    },
                    token,
                ))
                .await?
                .into_inner();
            Kind::AnalyzeStory(AnalyzeStory { story_id: story.id })
        }
    };
    Ok(JobSpec { kind: Some(kind), apply: Apply::Auto.into() })
}

/// Submits `count` jobs, one stream per user, round-robin over the workers, each user
/// with at most `in_flight` unfinished jobs (0: no bound); returns each job's id with
/// its owner's token.
async fn submit_all(
    workers: &[JobServiceClient<Channel>],
    users: &[(String, JobSpec)],
    count: usize,
    pace: Option<Duration>,
    in_flight: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut tasks = tokio::task::JoinSet::new();
    let per_user = count.div_ceil(users.len());
    for (i, (token, spec)) in users.iter().enumerate() {
        let mut client = workers[i % workers.len()].clone();
        let (token, spec) = (token.clone(), spec.clone());
        let n = per_user.min(count.saturating_sub(i * per_user));
        tasks.spawn(async move {
            let mut ids: Vec<(String, String)> = Vec::with_capacity(n);
            let mut tick = pace.map(tokio::time::interval);
            for i in 0..n {
                if in_flight > 0 && i >= in_flight {
                    let oldest = ids[i - in_flight].0.clone();
                    let timeout = Some(prost_types::Duration { seconds: 120, nanos: 0 });
                    client.wait_job(authed(WaitJobRequest { id: oldest, timeout }, &token)).await?;
                }
                if let Some(tick) = tick.as_mut() {
                    tick.tick().await;
                }
                let request = CreateJobRequest { spec: Some(spec.clone()), request_id: String::new() };
                ids.push((client.create_job(authed(request, &token)).await?.into_inner().id, token.clone()));
            }
            Ok::<_, tonic::Status>(ids)
        });
    }
    let mut ids = Vec::with_capacity(count);
    while let Some(done) = tasks.join_next().await {
        ids.extend(done??);
    }
    Ok(ids)
}

/// Every job, finished.
async fn wait_all(worker: &JobServiceClient<Channel>, ids: Vec<(String, String)>) -> anyhow::Result<Vec<Job>> {
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in ids.chunks(ids.len().div_ceil(16).max(1)) {
        let (mut client, chunk) = (worker.clone(), chunk.to_vec());
        tasks.spawn(async move {
            let mut jobs = Vec::with_capacity(chunk.len());
            for (id, token) in chunk {
                let timeout = Some(prost_types::Duration { seconds: 120, nanos: 0 });
                jobs.push(client.wait_job(authed(WaitJobRequest { id, timeout }, &token)).await?.into_inner());
            }
            Ok::<_, tonic::Status>(jobs)
        });
    }
    let mut jobs = Vec::new();
    while let Some(done) = tasks.join_next().await {
        jobs.extend(done??);
    }
    Ok(jobs)
}

fn report(jobs: &[Job], submitted: Duration, elapsed: Duration) {
    let succeeded = jobs.iter().filter(|j| j.state == JobState::Succeeded as i32).count();
    let mut latencies: Vec<f64> = jobs
        .iter()
        .filter_map(|j| Some(micros(j.start_time.as_ref()?) - micros(j.create_time.as_ref()?)))
        .map(|us| us as f64 / 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let at = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    // The worker's own clocks: the first job created to the last one ended, free of
    // the time this client takes to collect the results.
    let first_create = jobs.iter().filter_map(|j| j.create_time.as_ref().map(micros)).min().unwrap_or_default();
    let last_end = jobs.iter().filter_map(|j| j.end_time.as_ref().map(micros)).max().unwrap_or_default();
    let worker_span = (last_end - first_create).max(1) as f64 / 1e6;
    println!(
        "{} jobs, {} succeeded: submitted in {:.2} s, all finished in {:.2} s: {:.0} jobs/s \
         (first create → last end {:.2} s: {:.0} jobs/s); submit → RUNNING p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        jobs.len(),
        succeeded,
        submitted.as_secs_f64(),
        elapsed.as_secs_f64(),
        jobs.len() as f64 / elapsed.as_secs_f64(),
        worker_span,
        jobs.len() as f64 / worker_span,
        at(0.50),
        at(0.99),
        latencies.last().copied().unwrap_or(0.0),
    );
}

fn micros(t: &prost_types::Timestamp) -> i64 {
    t.seconds * 1_000_000 + i64::from(t.nanos) / 1000
}

fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("a header value"));
    request
}
