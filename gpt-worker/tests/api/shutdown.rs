//! Graceful shutdown: once the shutdown future resolves the worker stops claiming,
//! lets running jobs finish within the grace period, and hands back to the queue
//! those that do not, for another worker to complete.

use crate::common;

use std::time::{Duration, Instant};

use common::{Backend, Stack, authed, both_databases, paraphrase, spawn_stack_with, wait_for};
use fabula_contracts::pb::jobs::{JobState, WaitJobRequest, WatchJobRequest, job_update::Kind};
use fabula_testkit::fake_model::{FakeOpenAi, Reply, content_chunk};
use sqlx::Row;
use tonic::Code;

both_databases!(
    a_running_job_finishes_within_the_grace_period,
    a_job_still_running_after_the_grace_is_handed_back,
    open_watches_and_waits_do_not_hold_up_shutdown,
);

const SUGGESTIONS: &str = r#"{"suggestions": ["One way.", "Another way.", "A third way."]}"#;

/// The state and attempts of job `id` as stored.
async fn stored_state(stack: &Stack, id: &str) -> (String, i64) {
    let row = sqlx::query("SELECT state, attempts FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(stack.jobs_database.pool().await)
        .await
        .expect("the job row");
    (row.try_get(0).expect("a state"), row.try_get(1).expect("attempts"))
}

async fn a_running_job_finishes_within_the_grace_period(backend: Backend) {
    let (head, tail) = SUGGESTIONS.split_at(20);
    let pause = Duration::from_millis(600);
    let slow = Reply::event_stream().event(&content_chunk(head)).pause(pause).event(&content_chunk(tail)).done();
    let model = FakeOpenAi::start_script(vec![slow, Reply::streaming(&[SUGGESTIONS])]).await;
    let base_url = model.base_url.clone();
    let configure = move |s: &mut gpt_worker::Settings| {
        s.llm.base_url = Some(base_url.clone());
        s.queue.runners = 1;
    };
    let mut stack = spawn_stack_with(backend, configure.clone()).await;
    let user = stack.register_with_model_access("ana").await;
    let running = stack.submit(&user, paraphrase("Finish me before you go.")).await;
    stack.wait_until_streaming(&user, &running.id).await;
    let queued = stack.submit(&user, paraphrase("Leave me for the next worker.")).await;

    let started = Instant::now();
    stack.take_worker().stop().await;

    assert!(started.elapsed() < Duration::from_secs(5), "stopped within the grace: {:?}", started.elapsed());
    assert_eq!(stored_state(&stack, &running.id).await, ("SUCCEEDED".into(), 1), "the running job finished");
    assert_eq!(stored_state(&stack, &queued.id).await, ("QUEUED".into(), 0), "nothing more was claimed");
    let next = stack.start_worker(configure).await;
    let done = wait_for(&mut next.jobs(), &user, &queued.id).await;
    assert_eq!((done.state(), done.attempts), (JobState::Succeeded, 1), "{done:?}");
}

async fn a_job_still_running_after_the_grace_is_handed_back(backend: Backend) {
    let stuck = Reply::event_stream().event(&content_chunk("{\"suggest")).hang_until_closed();
    let mut model = FakeOpenAi::start_script(vec![stuck, Reply::streaming(&[SUGGESTIONS])]).await;
    let base_url = model.base_url.clone();
    let configure = move |s: &mut gpt_worker::Settings| {
        s.llm.base_url = Some(base_url.clone());
        s.queue.shutdown_grace = Duration::from_millis(100);
    };
    let mut stack = spawn_stack_with(backend, configure.clone()).await;
    let user = stack.register_with_model_access("ana").await;
    let job = stack.submit(&user, paraphrase("Too slow for the grace period.")).await;
    stack.wait_until_streaming(&user, &job.id).await;

    let started = Instant::now();
    stack.take_worker().stop().await;

    assert!(started.elapsed() < Duration::from_secs(2), "stopped soon after the grace: {:?}", started.elapsed());
    tokio::time::timeout(Duration::from_secs(1), model.connection_closed()).await.expect("its model request aborted");
    assert_eq!(stored_state(&stack, &job.id).await, ("QUEUED".into(), 0), "handed back; the attempt does not count");
    let next = stack.start_worker(configure).await;
    let done = wait_for(&mut next.jobs(), &user, &job.id).await;
    assert_eq!((done.state(), done.attempts), (JobState::Succeeded, 1), "{done:?}");
    assert_eq!(done.output, SUGGESTIONS, "the output started over");
    let states: Vec<Kind> = stack
        .stored_updates(&job.id)
        .await
        .into_iter()
        .filter_map(|u| u.kind.filter(|k| matches!(k, Kind::State(_))))
        .collect();
    let [running, queued, rerun, succeeded] =
        [JobState::Running, JobState::Queued, JobState::Running, JobState::Succeeded]
            .map(|state| Kind::State(state.into()));
    assert_eq!(states, [running, queued, rerun, succeeded], "watchers see it handed back and run again");
}

async fn open_watches_and_waits_do_not_hold_up_shutdown(backend: Backend) {
    let stuck = Reply::event_stream().event(&content_chunk("{\"suggest")).hang_until_closed();
    let model = FakeOpenAi::start(stuck).await;
    let base_url = model.base_url.clone();
    let mut stack = spawn_stack_with(backend, move |s| {
        s.llm.base_url = Some(base_url);
        s.queue.shutdown_grace = Duration::from_millis(100);
    })
    .await;
    let user = stack.register_with_model_access("ana").await;
    let job = stack.submit(&user, paraphrase("Watched until the end.")).await;
    stack.wait_until_streaming(&user, &job.id).await;
    let request = WatchJobRequest { id: job.id.clone(), after_seq: 0 };
    let mut watch = stack.jobs().watch_job(authed(request, &user.token)).await.expect("watch").into_inner();
    let wait = WaitJobRequest { id: job.id.clone(), timeout: Some(prost_types::Duration { seconds: 300, nanos: 0 }) };
    let mut jobs = stack.jobs();
    let waiting = tokio::spawn(async move { jobs.wait_job(authed(wait, &user.token)).await });
    // Nothing tells when a unary call has reached the server: give it a moment to. This
    // cannot make the test pass wrongly: a wait that never arrived ends without SHUTTING_DOWN.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), stack.take_worker().stop())
        .await
        .expect("the worker stopped though a watch and a wait were open");

    assert!(started.elapsed() < Duration::from_secs(2), "stopped soon after the grace: {:?}", started.elapsed());
    let watched = async { while let Ok(Some(_)) = watch.message().await {} };
    tokio::time::timeout(Duration::from_secs(1), watched).await.expect("the watch ended");
    let waited = tokio::time::timeout(Duration::from_secs(1), waiting).await.expect("the wait ended");
    let waited = waited.expect("the wait task");
    common::expect_code(waited, Code::Unavailable, "SHUTTING_DOWN", "an unfinished wait ends with an error");
}
