//! Two worker processes sharing one queue: every job of a burst runs to completion
//! exactly once — one attempt, one final update — whichever worker took it.

use crate::common;

use common::{Backend, paraphrase, spawn_services, submit_to, wait_for};
use fabula_proto::pb::jobs::{JobState, job_update::Kind};
use tokio::task::JoinSet;

both_databases!(two_workers_run_each_of_200_jobs_exactly_once);

const JOBS: usize = 200;

async fn two_workers_run_each_of_200_jobs_exactly_once(backend: Backend) {
    let stack = spawn_services(backend).await;
    let configure = |s: &mut gpt_worker::Settings| {
        s.queue.active_jobs_per_user = 10_000;
        s.queue.daily_jobs_per_user = 10_000;
    };
    let workers = [stack.spawn_worker(configure).await, stack.spawn_worker(configure).await];
    let user = stack.register_with_model_access("ana").await;

    let mut submitted = JoinSet::new();
    for i in 0..JOBS {
        let (mut jobs, user) = (workers[i % 2].jobs(), user.clone());
        submitted.spawn(async move { submit_to(&mut jobs, &user, paraphrase(&format!("Sentence number {i}."))).await });
    }
    let ids: Vec<String> = submitted.join_all().await.into_iter().map(|job| job.id).collect();

    for (i, id) in ids.iter().enumerate() {
        let job = wait_for(&mut workers[i % 2].jobs(), &user, id).await;
        assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
        assert_eq!(job.attempts, 1, "claimed once: {job:?}");
        let updates = stack.stored_updates(id).await;
        let seqs: Vec<i64> = updates.iter().map(|u| u.seq).collect();
        assert_eq!(seqs, (1..=updates.len() as i64).collect::<Vec<_>>(), "job {id}: numbered once each");
        let finals = updates.iter().filter(|u| matches!(u.kind, Some(Kind::Finished(_)))).count();
        assert_eq!(finals, 1, "job {id} finished once: {updates:?}");
        let runs = updates.iter().filter(|u| u.kind == Some(Kind::State(JobState::Running.into()))).count();
        assert_eq!(runs, 1, "job {id} started once: {updates:?}");
    }
}
