//! Waking across processes: on PostgreSQL, a job queued through one worker process
//! while only another has a free runner starts there at once. The create's NOTIFY
//! wakes the other process's runners; without it they would find the job only at
//! their next look at the queue, up to a second later.

use crate::common;

use std::time::{Duration, Instant};

use common::{Backend, JOB_TIMEOUT, Stack, paraphrase, spawn_services, submit_to, wait_for};
use fabula_contracts::pb::jobs::JobState;
use fabula_testkit::fake_model::{FakeOpenAi, Reply};
use sqlx::Row;

postgres_only!(a_job_queued_through_a_busy_process_starts_at_once_in_another);

const SUGGESTIONS: &str = r#"{"suggestions": ["One way.", "Another way.", "A third way."]}"#;
/// Jobs queued one after another, each timed.
const ROUNDS: usize = 3;
/// The longest from CreateJob to the job leaving the queue. An idle dispatcher looks at
/// the queue once a second (`POLL_EVERY` in runner.rs), and each job is queued
/// [`AFTER_THE_LAST`] after the dispatcher's last look, so without the wake-up each
/// would wait about 900 ms.
const PROMPTLY: Duration = Duration::from_millis(400);
/// How long after the previous job ended (and the dispatcher looked again) the next is queued.
const AFTER_THE_LAST: Duration = Duration::from_millis(100);

/// A worker's settings: `model`, `runners` runners, and no per-user limit in the way.
fn settings(model: &FakeOpenAi, runners: usize) -> impl FnOnce(&mut gpt_worker::Settings) + use<> {
    let base_url = model.base_url.clone();
    move |s| {
        s.llm.base_url = Some(base_url);
        s.queue.runners = runners;
        s.queue.active_jobs_per_user = 100;
    }
}

/// Waits until `count` connections to the job database listen for new jobs: then a
/// NOTIFY reaches every worker process.
async fn wait_until_listening(stack: &Stack, count: i64) {
    let deadline = Instant::now() + JOB_TIMEOUT;
    loop {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query ILIKE 'LISTEN%fabula_jobs%'",
        )
        .fetch_one(stack.jobs_database.pool().await)
        .await
        .expect("read pg_stat_activity");
        let listening: i64 = row.try_get(0).expect("a count");
        if listening >= count {
            return;
        }
        assert!(Instant::now() < deadline, "{listening} of {count} workers listen for new jobs");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_job_queued_through_a_busy_process_starts_at_once_in_another() {
    let stack = spawn_services(Backend::Postgres).await;
    let mut hanging = FakeOpenAi::start(Reply::hang()).await;
    let mut answering = FakeOpenAi::start(Reply::streaming(&[SUGGESTIONS])).await;
    let busy = stack.spawn_worker_process(settings(&hanging, 1)).await;
    let user = stack.register_with_model_access("ana").await;
    let blocker = submit_to(&mut busy.jobs(), &user, paraphrase("Keep the only runner busy.")).await;
    hanging.request_within(JOB_TIMEOUT).await;
    let _free = stack.spawn_worker_process(settings(&answering, 2)).await;
    wait_until_listening(&stack, 2).await;

    for round in 0..ROUNDS {
        // Deliberate: queued just after the dispatcher's last look, a job it finds by polling would wait.
        tokio::time::sleep(AFTER_THE_LAST).await;
        let queued = Instant::now();
        let job = submit_to(&mut busy.jobs(), &user, paraphrase(&format!("Round {round}."))).await;
        let claimed = stack.wait_for_row(&job.id, "leave the queue", |row| row.state != "QUEUED").await;
        let waited = queued.elapsed();
        assert!(waited < PROMPTLY, "round {round}: the job left the queue after {waited:?}, not at once: {claimed:?}");
        stack.wait_for_row(&job.id, "finish", |row| row.state != "RUNNING").await;
        let done = wait_for(&mut busy.jobs(), &user, &job.id).await;
        assert_eq!((done.state(), done.attempts), (JobState::Succeeded, 1), "{done:?}");
        assert_eq!(done.output, SUGGESTIONS, "the free process ran it, with its model");
    }

    assert_eq!(answering.unread_requests(), ROUNDS, "the free process asked its model once a job");
    assert_eq!(hanging.unread_requests(), 0, "the busy process started nothing more");
    let held = stack.stored_job(&blocker.id).await.expect("the blocker's row");
    assert_eq!((held.state.as_str(), held.attempts), ("RUNNING", 1), "the busy process still runs it: {held:?}");
}
