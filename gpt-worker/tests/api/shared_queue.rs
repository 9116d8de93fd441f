//! Two workers sharing one queue: every job of a burst runs to completion exactly
//! once — one attempt, one model call, one final update — and both workers run some.
//! On PostgreSQL the two are separate `gpt-worker` processes, as replicas are deployed;
//! on SQLite (a single-process queue) two workers share one database file in the test's
//! process. Each worker has a model of its own that answers in its own words, so a
//! job's stored output says which worker ran it.

use crate::common;

use common::{Backend, Stack, paraphrase, spawn_services, submit_to, wait_for};
use fabula_contracts::pb::jobs::{JobState, job_service_client::JobServiceClient, job_update::Kind};
use fabula_testkit::fake_model::{FakeOpenAi, Reply};
use tokio::task::JoinSet;
use tonic::transport::Channel;

postgres_only!(two_worker_processes_run_each_of_200_jobs_exactly_once);

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_workers_on_one_file_run_each_of_200_jobs_exactly_once() {
        super::two_workers_on_one_file_run_each_of_200_jobs_exactly_once().await;
    }
}

const JOBS: usize = 200;
/// The names of the two workers, in the words of their models.
const WORKERS: [&str; 2] = ["Ada", "Bo"];

/// What the model of `worker` answers to every Paraphrase.
fn suggestions_of(worker: &str) -> String {
    format!(r#"{{"suggestions": ["{worker} one.", "{worker} two.", "{worker} three."]}}"#)
}

async fn models() -> [FakeOpenAi; 2] {
    [
        FakeOpenAi::start(Reply::streaming(&[&suggestions_of(WORKERS[0])])).await,
        FakeOpenAi::start(Reply::streaming(&[&suggestions_of(WORKERS[1])])).await,
    ]
}

/// A worker's settings: `model`, and no per-user limit in the way of a burst.
fn settings(model: &FakeOpenAi) -> impl FnOnce(&mut gpt_worker::Settings) + use<> {
    let base_url = model.base_url.clone();
    move |s| {
        s.llm.base_url = Some(base_url);
        s.queue.active_jobs_per_user = 10_000;
        s.queue.daily_jobs_per_user = 10_000;
    }
}

async fn two_worker_processes_run_each_of_200_jobs_exactly_once() {
    let stack = spawn_services(Backend::Postgres).await;
    let models = models().await;
    let workers = [
        stack.spawn_worker_process(settings(&models[0])).await,
        stack.spawn_worker_process(settings(&models[1])).await,
    ];
    each_job_of_a_burst_runs_exactly_once(&stack, [workers[0].jobs(), workers[1].jobs()], models).await;
}

async fn two_workers_on_one_file_run_each_of_200_jobs_exactly_once() {
    let stack = spawn_services(Backend::Sqlite).await;
    let models = models().await;
    let workers = [stack.start_worker(settings(&models[0])).await, stack.start_worker(settings(&models[1])).await];
    each_job_of_a_burst_runs_exactly_once(&stack, [workers[0].jobs(), workers[1].jobs()], models).await;
}

/// Submits [`JOBS`] jobs, alternately through each worker, waits for them all, and checks
/// each ran once on one worker, and each worker ran some.
async fn each_job_of_a_burst_runs_exactly_once(
    stack: &Stack,
    workers: [JobServiceClient<Channel>; 2],
    mut models: [FakeOpenAi; 2],
) {
    let user = stack.register_with_model_access("ana").await;
    let mut submitted = JoinSet::new();
    for i in 0..JOBS {
        let (mut jobs, user) = (workers[i % 2].clone(), user.clone());
        submitted.spawn(async move {
            (i, submit_to(&mut jobs, &user, paraphrase(&format!("Sentence number {i}."))).await.id)
        });
    }
    let mut ids: Vec<(usize, String)> = submitted.join_all().await;
    ids.sort();

    let outputs = WORKERS.map(suggestions_of);
    let mut ran = [0_usize; 2];
    for (i, id) in &ids {
        let job = wait_for(&mut workers[i % 2].clone(), &user, id).await;
        assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
        assert_eq!(job.attempts, 1, "claimed once: {job:?}");
        let worker = outputs.iter().position(|output| *output == job.output);
        let worker = worker.unwrap_or_else(|| panic!("job {id}'s output is one model's whole answer: {job:?}"));
        ran[worker] += 1;
        let updates = stack.stored_updates(id).await;
        let seqs: Vec<i64> = updates.iter().map(|u| u.seq).collect();
        assert_eq!(seqs, (1..=updates.len() as i64).collect::<Vec<_>>(), "job {id}: numbered once each");
        let finals = updates.iter().filter(|u| matches!(u.kind, Some(Kind::Finished(_)))).count();
        assert_eq!(finals, 1, "job {id} finished once: {updates:?}");
        let runs = updates.iter().filter(|u| u.kind == Some(Kind::State(JobState::Running.into()))).count();
        assert_eq!(runs, 1, "job {id} started once: {updates:?}");
    }
    assert!(ran.iter().all(|&count| count > 0), "both workers ran jobs: {WORKERS:?} ran {ran:?}");
    let calls = [models[0].unread_requests(), models[1].unread_requests()];
    assert_eq!(calls, ran, "each job asked the model of the worker that ran it, once");
}
