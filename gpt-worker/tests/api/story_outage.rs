//! story-service going away mid-job is a transient failure: the job goes back to the
//! queue with STORY_SERVICE_UNAVAILABLE, is tried again after a growing backoff, and
//! succeeds once story-service is back; while it stays away, the job fails for good
//! when its attempts are spent.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    Backend, JOB_TIMEOUT, Stack, StoredJob, TestUser, authed, both_databases, private_world, spawn_services, submit_to,
    wait_for,
};
use fabula_contracts::pb::{
    jobs::{DescribeWorld, Job, JobState, job_result, job_spec::Kind, job_update},
    story::{GetWorldRequest, World},
};
use fabula_testkit::fake_model::{FakeOpenAi, Reply, content_chunk};

both_databases!(
    a_job_is_retried_while_story_service_is_down_and_succeeds_once_it_is_back,
    a_job_fails_with_story_service_unavailable_once_its_attempts_are_spent,
);

const DESCRIPTION: &str = "Eldoria is a land of slow rivers and quick boats.";
const UNAVAILABLE: &str = "STORY_SERVICE_UNAVAILABLE";
/// How long the model thinks before it answers the first attempt: story-service is
/// stopped meanwhile, after the job has read the world and before it writes it.
const THINKING: Duration = Duration::from_millis(1_500);
/// How long story-service stays away after the job's first failure.
const OUTAGE: Duration = Duration::from_secs(1);

/// A model that answers after [`THINKING`], then at once.
async fn model() -> FakeOpenAi {
    let slow = Reply::event_stream().pause(THINKING).event(&content_chunk(DESCRIPTION)).done();
    FakeOpenAi::start_script(vec![slow, Reply::streaming(&[DESCRIPTION])]).await
}

fn settings(model: &FakeOpenAi, max_attempts: u32) -> impl FnOnce(&mut gpt_worker::Settings) + use<> {
    let base_url = model.base_url.clone();
    move |s| {
        s.llm.base_url = Some(base_url);
        s.queue.max_attempts = max_attempts;
        s.queue.retry_base = Duration::from_millis(400);
        s.queue.retry_max = Duration::from_millis(800);
    }
}

/// Queues a DescribeWorld of a new world through `jobs`, and stops story-service once
/// the job has read the world and is waiting for the model.
async fn describe_then_stop_story_service(
    stack: &mut Stack,
    model: &mut FakeOpenAi,
    worker: &common::Worker,
) -> (TestUser, World, Job) {
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world_from(&user, private_world("Eldoria", "A land of rivers.")).await;
    let job =
        submit_to(&mut worker.jobs(), &user, Kind::DescribeWorld(DescribeWorld { world_id: world.id.clone() })).await;
    model.request_within(JOB_TIMEOUT).await;
    let stopping = Instant::now();
    stack.story.stop().await;
    assert!(
        stopping.elapsed() < THINKING / 2,
        "story-service stopped while the model thought: {:?}",
        stopping.elapsed()
    );
    (user, world, job)
}

async fn description(stack: &Stack, user: &TestUser, world_id: &str) -> String {
    let request = GetWorldRequest { id: world_id.into() };
    stack.worlds().get_world(authed(request, &user.token)).await.expect("get the world").into_inner().description
}

fn failed_for_story_service(row: &StoredJob) -> bool {
    row.error_code.as_deref() == Some(UNAVAILABLE)
}

async fn a_job_is_retried_while_story_service_is_down_and_succeeds_once_it_is_back(backend: Backend) {
    const MAX_ATTEMPTS: u32 = 8;
    let mut model = model().await;
    let mut stack = spawn_services(backend).await;
    let worker = stack.start_worker(settings(&model, MAX_ATTEMPTS)).await;
    let (user, world, job) = describe_then_stop_story_service(&mut stack, &mut model, &worker).await;

    let retrying = |row: &StoredJob| row.state == "QUEUED" && row.attempts >= 1;
    let first = stack.wait_for_row(&job.id, "fail while story-service is down", retrying).await;
    let failed_at = Instant::now();
    assert!(failed_for_story_service(&first), "queued again as a transient failure: {first:?}");
    let twice = |row: &StoredJob| row.state == "QUEUED" && row.attempts >= 2;
    let second = stack.wait_for_row(&job.id, "fail again while story-service is down", twice).await;
    assert!(failed_for_story_service(&second), "{second:?}");
    // Deliberate: the outage lasts OUTAGE, longer than attempts tried at once would.
    tokio::time::sleep(OUTAGE.saturating_sub(failed_at.elapsed())).await;
    stack.restart_story_service().await;

    let done = wait_for(&mut worker.jobs(), &user, &job.id).await;
    assert_eq!(done.state(), JobState::Succeeded, "{done:?}");
    // Tried again at once, the attempts would have run out within the outage.
    assert!((3..=MAX_ATTEMPTS as i32).contains(&done.attempts), "two failures or more, then success: {done:?}");
    assert_eq!(done.error, None, "a success keeps no error of a failed attempt: {done:?}");
    let Some(job_result::Kind::Description(result)) = done.result.and_then(|r| r.kind) else {
        panic!("a description result")
    };
    assert!(result.applied && result.text == DESCRIPTION, "{result:?}");
    assert_eq!(description(&stack, &user, &world.id).await, DESCRIPTION, "written to story-service once it was back");

    let states: Vec<JobState> = stack
        .stored_updates(&job.id)
        .await
        .into_iter()
        .filter_map(|u| match u.kind {
            Some(job_update::Kind::State(state)) => JobState::try_from(state).ok(),
            _ => None,
        })
        .collect();
    let mut expected = vec![JobState::Running];
    for _ in 1..done.attempts {
        expected.extend([JobState::Queued, JobState::Running]);
    }
    expected.push(JobState::Succeeded);
    assert_eq!(states, expected, "each failed attempt went back to the queue, and the last succeeded");
}

async fn a_job_fails_with_story_service_unavailable_once_its_attempts_are_spent(backend: Backend) {
    const MAX_ATTEMPTS: u32 = 3;
    let mut model = model().await;
    let mut stack = spawn_services(backend).await;
    let worker = stack.start_worker(settings(&model, MAX_ATTEMPTS)).await;
    let (user, world, job) = describe_then_stop_story_service(&mut stack, &mut model, &worker).await;

    let failed = stack.wait_for_row(&job.id, "fail for good", |row| row.state == "FAILED").await;
    assert_eq!(failed.attempts, i64::from(MAX_ATTEMPTS), "every attempt was made: {failed:?}");
    assert!(failed_for_story_service(&failed), "{failed:?}");
    stack.restart_story_service().await;

    let done = wait_for(&mut worker.jobs(), &user, &job.id).await;
    assert_eq!((done.state(), done.attempts), (JobState::Failed, MAX_ATTEMPTS as i32), "{done:?}");
    assert_eq!(done.error.as_ref().map(|e| e.code.as_str()), Some(UNAVAILABLE), "{done:?}");
    assert_eq!(description(&stack, &user, &world.id).await, "A land of rivers.", "nothing was written");
}
