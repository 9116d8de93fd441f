//! CancelJob: a queued job ends CANCELLED at once; a running one within a second,
//! its model request aborted and nothing more written to story-service, whichever
//! worker process the cancel reaches.

use crate::common;

use std::time::{Duration, Instant};

use common::{Backend, Stack, TestUser, authed, both_databases, paraphrase, private_world, spawn_stack_with, wait_for};
use fabula_contracts::pb::{
    jobs::{CancelJobRequest, DescribeWorld, Job, JobState, job_service_client::JobServiceClient, job_spec::Kind},
    story::GetWorldRequest,
};
use fabula_testkit::fake_model::{FakeOpenAi, Reply, content_chunk};
use tonic::transport::Channel;

both_databases!(
    a_queued_job_is_cancelled_at_once,
    a_running_job_is_cancelled_within_a_second_and_its_request_aborted,
    a_cancelled_job_writes_nothing_more,
    a_cancel_through_another_worker_stops_the_job,
);

/// Cancelling takes at most this long for a running job.
const CANCEL_WITHIN: Duration = Duration::from_secs(1);

async fn stack_on(backend: Backend, model: &FakeOpenAi, runners: usize) -> Stack {
    let base_url = model.base_url.clone();
    spawn_stack_with(backend, |s| {
        s.llm.base_url = Some(base_url);
        s.queue.runners = runners;
    })
    .await
}

async fn cancel(jobs: &mut JobServiceClient<Channel>, user: &TestUser, id: &str) -> Job {
    jobs.cancel_job(authed(CancelJobRequest { id: id.into() }, &user.token)).await.expect("cancel").into_inner()
}

/// Cancels running job `id` through `jobs` and checks it ends CANCELLED within a second.
async fn cancel_running(jobs: &mut JobServiceClient<Channel>, user: &TestUser, id: &str) -> Job {
    let started = Instant::now();
    cancel(jobs, user, id).await;
    let job = wait_for(jobs, user, id).await;
    assert_eq!(job.state(), JobState::Cancelled, "{job:?}");
    assert!(started.elapsed() < CANCEL_WITHIN, "cancelled in {:?}", started.elapsed());
    assert!(job.error.is_none() && job.result.is_none(), "a cancelled job has no result: {job:?}");
    job
}

async fn a_queued_job_is_cancelled_at_once(backend: Backend) {
    let model = FakeOpenAi::start(Reply::hang()).await;
    let stack = stack_on(backend, &model, 1).await;
    let user = stack.register_with_model_access("ana").await;
    let running = stack.submit(&user, paraphrase("The only runner is busy with this.")).await;
    stack.wait_until_running(&user, &running.id).await;
    let queued = stack.submit(&user, paraphrase("This one waits in the queue.")).await;

    let cancelled = cancel(&mut stack.jobs(), &user, &queued.id).await;

    assert_eq!(cancelled.state(), JobState::Cancelled, "cancelled at once: {cancelled:?}");
    assert!(cancelled.end_time.is_some() && cancelled.start_time.is_none(), "it never ran: {cancelled:?}");
    assert_eq!(cancelled.attempts, 0);
    let updates = stack.stored_updates(&queued.id).await;
    assert!(matches!(&updates[..], [update] if update.seq == 1), "one final update: {updates:?}");
    let again = cancel(&mut stack.jobs(), &user, &queued.id).await;
    assert_eq!(again, cancelled, "cancelling a finished job changes nothing");
}

async fn a_running_job_is_cancelled_within_a_second_and_its_request_aborted(backend: Backend) {
    let reply = Reply::event_stream().event(&content_chunk("{\"suggestions\": [")).hang_until_closed();
    let mut model = FakeOpenAi::start(reply).await;
    let stack = stack_on(backend, &model, 2).await;
    let user = stack.register_with_model_access("ana").await;
    let job = stack.submit(&user, paraphrase("A long thought.")).await;
    stack.wait_until_streaming(&user, &job.id).await;

    let cancelled = cancel_running(&mut stack.jobs(), &user, &job.id).await;

    tokio::time::timeout(CANCEL_WITHIN, model.connection_closed()).await.expect("the model request was aborted");
    assert_eq!(cancelled.attempts, 1);
    assert_eq!(cancelled.output, "{\"suggestions\": [", "the output written before the cancel stays");
}

async fn a_cancelled_job_writes_nothing_more(backend: Backend) {
    let pause = Duration::from_millis(800);
    let reply = Reply::event_stream().event(&content_chunk("A windswept land")).pause(pause);
    let model = FakeOpenAi::start(reply.event(&content_chunk(" of salt and iron.")).done()).await;
    let stack = stack_on(backend, &model, 2).await;
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world_from(&user, private_world("Eldoria", "Written by hand.")).await;
    let job = stack.submit(&user, Kind::DescribeWorld(DescribeWorld { world_id: world.id.clone() })).await;
    stack.wait_until_streaming(&user, &job.id).await;

    cancel_running(&mut stack.jobs(), &user, &job.id).await;
    let updates = stack.stored_updates(&job.id).await;
    // Past the moment the model would have finished, had the request gone on.
    tokio::time::sleep(pause).await;

    let request = GetWorldRequest { id: world.id.clone() };
    let stored = stack.worlds().get_world(authed(request, &user.token)).await.expect("get the world").into_inner();
    assert_eq!(stored.description, "Written by hand.", "the cancelled job wrote nothing");
    assert_eq!(stack.stored_updates(&job.id).await, updates, "no update after the final one");
}

async fn a_cancel_through_another_worker_stops_the_job(backend: Backend) {
    let reply = Reply::event_stream().event(&content_chunk("{\"suggestions\": [")).hang_until_closed();
    let mut model = FakeOpenAi::start(reply).await;
    let stack = stack_on(backend, &model, 2).await;
    let user = stack.register_with_model_access("ana").await;
    let job = stack.submit(&user, paraphrase("A long thought.")).await;
    stack.wait_until_streaming(&user, &job.id).await;
    let other = stack.start_worker(|s| s.llm.base_url = Some(model.base_url.clone())).await;

    cancel_running(&mut other.jobs(), &user, &job.id).await;

    tokio::time::timeout(CANCEL_WITHIN, model.connection_closed()).await.expect("the model request was aborted");
}
