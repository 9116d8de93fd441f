//! Following a job: WatchJob's numbered updates (state, progress, output deltas, then
//! the finished job), a reconnect that misses nothing, and WaitJob.

use crate::common;

use std::time::{Duration, Instant};

use common::{Backend, TestUser, authed, both_databases, expect_invalid, paraphrase, spawn_stack, spawn_stack_with};
use fabula_contracts::pb::jobs::{
    JobState, JobUpdate, WaitJobRequest, WatchJobRequest, job_service_client::JobServiceClient, job_update::Kind,
};
use fabula_testkit::fake_model::{FakeOpenAi, Reply};
use tonic::transport::Channel;

both_databases!(
    a_watch_sees_the_job_run_and_a_reconnect_misses_nothing,
    a_watch_after_the_final_update_ends_at_once,
    wait_returns_the_finished_job_or_the_job_at_the_timeout,
    bad_watch_and_wait_arguments_name_the_field,
);

/// Every update of a watch from `after_seq` until the stream ends.
async fn watch_all(jobs: &mut JobServiceClient<Channel>, user: &TestUser, id: &str, after_seq: i64) -> Vec<JobUpdate> {
    let request = WatchJobRequest { id: id.into(), after_seq };
    let mut stream = jobs.watch_job(authed(request, &user.token)).await.expect("watch the job").into_inner();
    let mut updates = Vec::new();
    let collect = async {
        while let Some(update) = stream.message().await.expect("the watch goes on") {
            updates.push(update);
        }
    };
    tokio::time::timeout(common::JOB_TIMEOUT, collect).await.expect("the watch ends once the job is finished");
    updates
}

async fn a_watch_sees_the_job_run_and_a_reconnect_misses_nothing(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let mut jobs = stack.jobs();
    let job = stack.submit(&user, paraphrase("The old man said hello to the sea.")).await;

    let updates = watch_all(&mut jobs, &user, &job.id, 0).await;

    let seqs: Vec<i64> = updates.iter().map(|u| u.seq).collect();
    assert_eq!(seqs, (1..=updates.len() as i64).collect::<Vec<_>>(), "numbered from 1, one by one");
    assert_eq!(updates[0].kind, Some(Kind::State(JobState::Running.into())), "it starts RUNNING");
    assert!(updates.iter().any(|u| matches!(u.kind, Some(Kind::Progress(_)))), "progress: {updates:?}");
    let deltas: String = updates
        .iter()
        .filter_map(|u| match &u.kind {
            Some(Kind::OutputDelta(delta)) => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    let Some(Kind::Finished(finished)) = &updates.last().expect("updates").kind else {
        panic!("the last update is the finished job: {updates:?}")
    };
    assert_eq!(finished.state(), JobState::Succeeded);
    assert_eq!(finished.id, job.id);
    assert!(!deltas.is_empty(), "the output streamed");
    assert_eq!(deltas, finished.output, "the deltas add up to the output");
    let finals = updates.iter().filter(|u| matches!(u.kind, Some(Kind::Finished(_)))).count();
    assert_eq!(finals, 1, "one finished update");

    for after in [1, updates.len() as i64 / 2, updates.len() as i64 - 1] {
        let rest = watch_all(&mut jobs, &user, &job.id, after).await;
        assert_eq!(rest, updates[after as usize..], "a reconnect after {after} sees exactly the rest");
    }
}

async fn a_watch_after_the_final_update_ends_at_once(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let job = stack.run_job(&user, paraphrase("Short and done.")).await;
    let last = stack.stored_updates(&job.id).await.last().expect("updates").seq;

    let started = Instant::now();
    let rest = watch_all(&mut stack.jobs(), &user, &job.id, last).await;

    assert!(rest.is_empty(), "nothing after the final update: {rest:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "the watch ended at once");
}

async fn wait_returns_the_finished_job_or_the_job_at_the_timeout(backend: Backend) {
    let model = FakeOpenAi::start_script(vec![Reply::hang(), Reply::streaming(&[SUGGESTIONS])]).await;
    let stack = spawn_stack_with(backend, |s| s.llm.base_url = Some(model.base_url.clone())).await;
    let user = stack.register_with_model_access("ana").await;
    let mut jobs = stack.jobs();
    let stuck = stack.submit(&user, paraphrase("The model never answers this.")).await;
    let timeout = Duration::from_millis(300);

    let started = Instant::now();
    let request = WaitJobRequest { id: stuck.id.clone(), timeout: Some(timeout.try_into().expect("a duration")) };
    let waited = jobs.wait_job(authed(request, &user.token)).await.expect("wait").into_inner();

    assert!(started.elapsed() >= timeout && started.elapsed() < timeout * 5, "waited {:?}", started.elapsed());
    assert!(!common::is_finished(&waited), "returned unfinished at the timeout: {waited:?}");

    let answered = stack.submit(&user, paraphrase("The model answers this.")).await;
    let request = WaitJobRequest {
        id: answered.id.clone(),
        timeout: Some(Duration::from_secs(10).try_into().expect("a duration")),
    };
    let done = jobs.wait_job(authed(request, &user.token)).await.expect("wait").into_inner();
    assert_eq!(done.state(), JobState::Succeeded, "WaitJob returns the finished job: {done:?}");
}

const SUGGESTIONS: &str = r#"{"suggestions": ["One way.", "Another way.", "A third way."]}"#;

async fn bad_watch_and_wait_arguments_name_the_field(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let job = stack.run_job(&user, paraphrase("Fine.")).await;
    let mut jobs = stack.jobs();

    let watch = jobs.watch_job(authed(WatchJobRequest { id: job.id.clone(), after_seq: -1 }, &user.token)).await;
    expect_invalid(watch.map(|_| ()), "after_seq", "a negative after_seq");
    let negative = prost_types::Duration { seconds: -1, nanos: 0 };
    let wait = jobs.wait_job(authed(WaitJobRequest { id: job.id.clone(), timeout: Some(negative) }, &user.token)).await;
    expect_invalid(wait, "timeout", "a negative timeout");
}
