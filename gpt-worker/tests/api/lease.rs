//! Lease renewal: a job that runs for several lease periods stays with the worker that
//! claimed it, because its heartbeat keeps moving the lease forward. Another worker
//! looking at the queue all the while does not take it over.

use crate::common;

use std::time::Duration;

use common::{Backend, JOB_TIMEOUT, both_databases, paraphrase, spawn_services, submit_to, wait_for};
use fabula_contracts::pb::jobs::{JobState, job_update::Kind};
use fabula_store::now_micros;
use fabula_testkit::fake_model::{FakeOpenAi, Reply, content_chunk};

both_databases!(a_job_running_longer_than_its_lease_is_not_taken_over);

const SUGGESTIONS: &str = r#"{"suggestions": ["One way.", "Another way.", "A third way."]}"#;
const OTHER_SUGGESTIONS: &str = r#"{"suggestions": ["Not this.", "Nor this.", "Nor that."]}"#;
const LEASE: Duration = Duration::from_millis(1_500);
/// The model streams its answer in this many pieces, pausing before each: three leases in all.
const PIECES: usize = 6;
const PAUSE: Duration = Duration::from_millis(750);

fn settings(model: &FakeOpenAi) -> impl FnOnce(&mut gpt_worker::Settings) + use<> {
    let base_url = model.base_url.clone();
    move |s| {
        s.llm.base_url = Some(base_url);
        s.queue.lease = LEASE;
    }
}

/// [`SUGGESTIONS`], streamed slowly.
fn slow_answer() -> Reply {
    let size = SUGGESTIONS.len().div_ceil(PIECES);
    let pieces = SUGGESTIONS.as_bytes().chunks(size).map(|piece| std::str::from_utf8(piece).expect("ASCII"));
    pieces.fold(Reply::event_stream(), |reply, piece| reply.pause(PAUSE).event(&content_chunk(piece))).done()
}

async fn a_job_running_longer_than_its_lease_is_not_taken_over(backend: Backend) {
    let mut slow = FakeOpenAi::start(slow_answer()).await;
    let mut other = FakeOpenAi::start(Reply::streaming(&[OTHER_SUGGESTIONS])).await;
    let stack = spawn_services(backend).await;
    let first = stack.start_worker(settings(&slow)).await;
    let user = stack.register_with_model_access("ana").await;
    let job = submit_to(&mut first.jobs(), &user, paraphrase("Take your time.")).await;
    slow.request_within(JOB_TIMEOUT).await;
    let claimed = stack.stored_job(&job.id).await.expect("the job's row");
    let second = stack.start_worker(settings(&other)).await;

    // Deliberate: the job must run past its first lease, which is the subject.
    tokio::time::sleep(LEASE * 2).await;
    let later = stack.stored_job(&job.id).await.expect("the job's row");
    let now = now_micros();
    assert_eq!((later.state.as_str(), later.attempts), ("RUNNING", 1), "still the first attempt: {later:?}");
    assert!(claimed.lease_expires.expect("a claimed job has a lease") < now, "the first lease has run out");
    assert!(later.lease_expires.expect("a running job has a lease") > now, "the lease was renewed: {later:?}");
    assert_eq!(later.lease_owner, claimed.lease_owner, "the lease is still the first worker's");

    let done = wait_for(&mut second.jobs(), &user, &job.id).await;
    assert_eq!((done.state(), done.attempts), (JobState::Succeeded, 1), "one attempt, never taken over: {done:?}");
    assert_eq!(done.output, SUGGESTIONS, "the first worker's model wrote all of it");
    assert_eq!(other.unread_requests(), 0, "the second worker never ran the job");
    let updates = stack.stored_updates(&job.id).await;
    let runs = updates.iter().filter(|u| u.kind == Some(Kind::State(JobState::Running.into()))).count();
    assert_eq!(runs, 1, "started once: {updates:?}");
}
