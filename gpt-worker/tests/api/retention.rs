//! Retention: a finished job is removed, with its updates, once it is older than the
//! configured retention (`WORKER_RETENTION`); queued and running jobs stay whatever
//! their age. A worker sweeps old jobs when it starts and then every ten minutes
//! (`CLEAN_EVERY` in lib.rs, not a setting), so these tests start a worker to see a sweep.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    Backend, JOB_TIMEOUT, Stack, TestUser, authed, both_databases, paraphrase, spawn_services, submit_to, wait_for,
};
use fabula_contracts::pb::jobs::{GetJobRequest, JobState, job_service_client::JobServiceClient};
use fabula_testkit::fake_model::{FakeOpenAi, Reply};
use tonic::{Code, transport::Channel};

both_databases!(a_finished_job_is_removed_after_the_retention_and_unfinished_ones_are_kept);

const SUGGESTIONS: &str = r#"{"suggestions": ["One way.", "Another way.", "A third way."]}"#;
const RETENTION: Duration = Duration::from_secs(2);
/// How long a worker that just started is given for its first sweep.
const FIRST_SWEEP: Duration = Duration::from_secs(5);

fn settings(model: &FakeOpenAi) -> impl FnOnce(&mut gpt_worker::Settings) + Clone + use<> {
    let base_url = model.base_url.clone();
    move |s| {
        s.llm.base_url = Some(base_url);
        s.queue.retention = RETENTION;
        // A failed attempt waits in the queue for the rest of the test.
        s.queue.retry_base = Duration::from_secs(60);
        s.queue.retry_max = Duration::from_secs(60);
    }
}

async fn get(jobs: &mut JobServiceClient<Channel>, user: &TestUser, id: &str) -> Result<JobState, tonic::Status> {
    Ok(jobs.get_job(authed(GetJobRequest { id: id.into() }, &user.token)).await?.into_inner().state())
}

/// Checks job `id` is stored in `state` with its updates, and GetJob finds it.
async fn assert_kept(stack: &Stack, jobs: &mut JobServiceClient<Channel>, user: &TestUser, id: &str, state: JobState) {
    let row = stack.stored_job(id).await.unwrap_or_else(|| panic!("the {state:?} job {id} was removed"));
    assert_eq!(row.state, state.as_str_name(), "{row:?}");
    assert!(!stack.stored_updates(id).await.is_empty(), "the {state:?} job keeps its updates");
    assert_eq!(get(jobs, user, id).await.expect("GetJob finds it"), state);
}

async fn a_finished_job_is_removed_after_the_retention_and_unfinished_ones_are_kept(backend: Backend) {
    let overloaded = Reply::status(500, &[], r#"{"error": {"message": "overloaded"}}"#);
    let script = vec![Reply::hang(), overloaded, Reply::streaming(&[SUGGESTIONS])];
    let mut model = FakeOpenAi::start_script(script).await;
    let stack = spawn_services(backend).await;
    let first = stack.start_worker(settings(&model)).await;
    let user = stack.register_with_model_access("ana").await;
    // The unfinished jobs come first, to be older than the retention when the finished one is past it.
    // The model's answers go in order: one job at a time.
    let running = submit_to(&mut first.jobs(), &user, paraphrase("The model never answers.")).await;
    model.request_within(JOB_TIMEOUT).await;
    let retrying = submit_to(&mut first.jobs(), &user, paraphrase("The model is overloaded.")).await;
    model.request_within(JOB_TIMEOUT).await;
    let waiting = |row: &common::StoredJob| row.state == "QUEUED" && row.attempts == 1;
    let retry = stack.wait_for_row(&retrying.id, "wait for its retry", waiting).await;
    assert_eq!(retry.error_code.as_deref(), Some("MODEL_UNAVAILABLE"), "{retry:?}");
    let finished = submit_to(&mut first.jobs(), &user, paraphrase("Done soon.")).await;
    let done = wait_for(&mut first.jobs(), &user, &finished.id).await;
    let ended = Instant::now();
    assert_eq!(done.state(), JobState::Succeeded, "{done:?}");

    // A sweep within the retention keeps it. A sweep removes what it removes in one
    // statement, so a copy of the job that ended long ago, gone, says a sweep ran and
    // looked at the finished job too.
    let canary = stack.plant_finished_copy(&finished.id).await;
    let early = stack.start_worker(settings(&model)).await;
    let deadline = Instant::now() + FIRST_SWEEP;
    while stack.stored_job(&canary).await.is_some() {
        assert!(Instant::now() < deadline, "the worker did not sweep within {FIRST_SWEEP:?} of starting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ended.elapsed() < RETENTION, "the early sweep ran within the retention");
    assert_kept(&stack, &mut early.jobs(), &user, &finished.id, JobState::Succeeded).await;
    early.stop().await;

    // Waiting out the retention is the subject: only then may a sweep remove the job.
    tokio::time::sleep((ended + RETENTION + Duration::from_millis(200)).saturating_duration_since(Instant::now()))
        .await;
    let late = stack.start_worker(settings(&model)).await;

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match get(&mut late.jobs(), &user, &finished.id).await {
            Err(status) if status.code() == Code::NotFound => break,
            Ok(state) => assert!(Instant::now() < deadline, "the finished job is still there: {state:?}"),
            Err(status) => panic!("GetJob of a removed job: {status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stack.stored_job(&finished.id).await, None, "its row is gone");
    assert!(stack.stored_updates(&finished.id).await.is_empty(), "its updates are gone");
    assert_kept(&stack, &mut late.jobs(), &user, &running.id, JobState::Running).await;
    assert_kept(&stack, &mut late.jobs(), &user, &retrying.id, JobState::Queued).await;
}
