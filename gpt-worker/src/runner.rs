//! The runners: a dispatcher claims as many due jobs as there are free runner slots,
//! each claimed job runs on its own task, a heartbeat renews the leases and watches
//! for cancel requests, and shutdown lets running jobs finish within a grace period
//! before handing the rest back to the queue.
//!
//! [`Worker::try_run_next_job`] is the unit: claim one job, run one attempt, record
//! how it ended. The loops only call it (or its batch form).

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use fabula_contracts::pb::jobs::{JobError, JobState};
use fabula_runtime::telemetry::escaped;
use fabula_store::{Db, Result, now_micros};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    config::QueueSettings,
    kinds::{self, JobContext, KindError},
    llm::LanguageModel,
    queue::{self, Claimed},
    recorder::Recorder,
    story_client::StoryClient,
    writer::{JobDisposition, Writer},
};

/// How often a running job's output is written while the model streams.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// How often the heartbeat looks for cancel requests made through other processes.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(400);
/// How long a wake-up waits for others when some runners are busy (see `gather_wake_ups`).
const GATHER_FOR: Duration = Duration::from_millis(2);
/// How often the dispatcher looks at the queue when nothing woke it.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// What one step of the worker ([`Worker::try_run_next_job`]) came to: nothing was
/// due, or what became of the job it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Nothing was due.
    Idle,
    Succeeded,
    Failed,
    Cancelled,
    /// Failed for now; queued again after a backoff.
    Retrying,
    /// Handed back to the queue at shutdown.
    Released,
    /// Another worker took the job over; this one wrote nothing more.
    LeaseLost,
}

pub struct Worker {
    id: Arc<str>,
    db: Db,
    writer: Writer,
    settings: QueueSettings,
    llm: Arc<dyn LanguageModel>,
    story: StoryClient,
    slots: Arc<Semaphore>,
    /// The runs on this worker: each job's attempt and what stops it.
    running: Mutex<HashMap<Uuid, (i32, CancellationToken)>>,
    /// Cancelled when the grace period after shutdown is over.
    stopping: CancellationToken,
    wake: Arc<Notify>,
    /// Jobs were queued here that other processes have not been told of.
    untold: Notify,
}

impl Worker {
    pub fn new(
        db: Db,
        writer: Writer,
        worker_id: Arc<str>,
        settings: QueueSettings,
        llm: Arc<dyn LanguageModel>,
        story: StoryClient,
    ) -> Self {
        Self {
            id: worker_id,
            db,
            writer,
            slots: Arc::new(Semaphore::new(settings.runners.max(1))),
            settings,
            llm,
            story,
            running: Mutex::default(),
            stopping: CancellationToken::new(),
            wake: Arc::default(),
            untold: Notify::new(),
        }
    }

    /// The id this worker holds leases under.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A job was queued: look at the queue now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A job was queued here: look at the queue now, and tell the other processes
    /// ([`Worker::untold_jobs`]).
    pub fn queued(&self) {
        self.wake();
        self.untold.notify_one();
    }

    /// Resolves once jobs were queued here since it last resolved.
    pub async fn untold_jobs(&self) {
        self.untold.notified().await;
    }

    /// Stops job `id` at once if it runs here; true when it did.
    pub fn cancel_here(&self, id: Uuid) -> bool {
        self.running.lock().expect("running jobs").get(&id).map(|(_, stop)| stop.cancel()).is_some()
    }

    /// Claims one due job and runs one attempt of it.
    pub async fn try_run_next_job(&self) -> Result<StepOutcome> {
        let mut claimed = queue::claim(&self.db, &self.id, 1, self.settings.lease).await?;
        match claimed.pop() {
            Some(job) => self.run_claimed(job).await,
            None => Ok(StepOutcome::Idle),
        }
    }

    /// Runs one attempt of a job this worker holds, and records how it ended.
    async fn run_claimed(&self, claimed: Claimed) -> Result<StepOutcome> {
        let recorder = Recorder::new(claimed.id, claimed.job.attempts.into(), claimed.last_seq, self.writer.clone());
        let attempts = u32::try_from(claimed.job.attempts).unwrap_or(u32::MAX);
        if claimed.cancel_requested {
            return self
                .end(&recorder, recorder.finished(JobState::Cancelled, None, None), StepOutcome::Cancelled)
                .await;
        }
        if attempts > self.settings.max_attempts {
            let error = JobError {
                code: "ATTEMPTS_EXHAUSTED".into(),
                message: format!("the job was interrupted {} times", attempts - 1),
            };
            return self
                .end(&recorder, recorder.finished(JobState::Failed, None, Some(error)), StepOutcome::Failed)
                .await;
        }
        recorder.state(JobState::Running);
        let stop = self.start_run(&claimed);
        let ended = self.attempt(&claimed, &recorder, &stop).await;
        self.end_run(&claimed);
        match ended {
            AttemptEnd::Done(Ok(result)) => {
                self.end(&recorder, recorder.finished(JobState::Succeeded, Some(result), None), StepOutcome::Succeeded)
                    .await
            }
            AttemptEnd::Done(Err(failure)) => self.fail(&recorder, failure, attempts).await,
            AttemptEnd::Stopped if self.stopping.is_cancelled() => {
                recorder.state(JobState::Queued);
                self.end(&recorder, JobDisposition::Release, StepOutcome::Released).await
            }
            AttemptEnd::Stopped => {
                self.end(&recorder, recorder.finished(JobState::Cancelled, None, None), StepOutcome::Cancelled).await
            }
            AttemptEnd::LeaseLost => Ok(StepOutcome::LeaseLost),
        }
    }

    /// Registers a run of `claimed` and returns what stops it. A run of an earlier
    /// attempt still here lost its lease (this worker claimed the job again after it
    /// expired): it is stopped, and writes nothing more.
    fn start_run(&self, claimed: &Claimed) -> CancellationToken {
        let stop = self.stopping.child_token();
        let run = (claimed.job.attempts, stop.clone());
        if let Some((_, stale)) = self.running.lock().expect("running jobs").insert(claimed.id, run) {
            stale.cancel();
        }
        stop
    }

    /// Forgets the run of `claimed`, unless a later run of the job replaced it.
    fn end_run(&self, claimed: &Claimed) {
        let mut running = self.running.lock().expect("running jobs");
        if running.get(&claimed.id).is_some_and(|(attempt, _)| *attempt == claimed.job.attempts) {
            running.remove(&claimed.id);
        }
    }

    /// Runs the job's kind until it ends or is stopped, writing output as it streams.
    async fn attempt(&self, claimed: &Claimed, recorder: &Recorder, stop: &CancellationToken) -> AttemptEnd {
        let spec = claimed.job.spec.clone().unwrap_or_default();
        let ctx = JobContext {
            job_id: claimed.id,
            // A run saves answers only with its updates: none stored, no earlier run.
            resumed: claimed.last_seq > 0,
            owner: owner_of(claimed),
            apply: spec.apply(),
            llm: &self.llm,
            story: &self.story,
            recorder,
            db: &self.db,
        };
        let work = kinds::run(&ctx, &spec);
        tokio::pin!(work);
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        flush.tick().await;
        loop {
            tokio::select! {
                ended = &mut work => return AttemptEnd::Done(ended),
                () = stop.cancelled() => return AttemptEnd::Stopped,
                _ = flush.tick() => match recorder.flush().await {
                    Ok(true) => {}
                    Ok(false) => return AttemptEnd::LeaseLost,
                    Err(error) => {
                        tracing::warn!(error = %escaped(&error), job = %claimed.id, "progress not written; will retry");
                    }
                },
            }
        }
    }

    /// A failed attempt: again later when it may help and attempts remain, else FAILED.
    async fn fail(&self, recorder: &Recorder, failure: KindError, attempts: u32) -> Result<StepOutcome> {
        match failure {
            KindError::Transient { code, message, retry_after } if attempts < self.settings.max_attempts => {
                let delay = queue::backoff(attempts, self.settings.retry_base, self.settings.retry_max, retry_after);
                tracing::info!(job = %recorder.job_id(), code, attempt = attempts, ?delay, "attempt failed; will retry");
                recorder.state(JobState::Queued);
                recorder.progress(
                    0,
                    format!("attempt {attempts} failed ({message}); retrying in {:.1} s", delay.as_secs_f64()),
                );
                let error = JobError { code: code.into(), message };
                let end = JobDisposition::Retry { run_after: now_micros() + delay.as_micros() as i64, error };
                let outcome = self.end(recorder, end, StepOutcome::Retrying).await;
                self.wake_after(delay);
                outcome
            }
            KindError::Transient { code, message, .. } | KindError::Permanent { code, message } => {
                tracing::info!(job = %recorder.job_id(), code, "job failed");
                let error = JobError { code: code.into(), message };
                self.end(recorder, recorder.finished(JobState::Failed, None, Some(error)), StepOutcome::Failed).await
            }
        }
    }

    /// Looks at the queue again once `delay` is over, when a retry falls due.
    fn wake_after(&self, delay: Duration) {
        let wake = self.wake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            wake.notify_one();
        });
    }

    async fn end(&self, recorder: &Recorder, end: JobDisposition, outcome: StepOutcome) -> Result<StepOutcome> {
        let held = recorder.end(end).await?;
        Ok(if held { outcome } else { StepOutcome::LeaseLost })
    }

    /// Claims and runs jobs until `shutdown` resolves; then lets running jobs finish
    /// within the grace period and hands the others back to the queue.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let heartbeat = tokio::spawn(self.clone().heartbeat());
        tokio::pin!(shutdown);
        loop {
            let free = self.slots.available_permits();
            let claimed = if free == 0 { 0 } else { self.dispatch(free).await };
            if claimed == free && free > 0 {
                continue;
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = self.wake.notified() => self.gather_wake_ups().await,
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
        self.drain().await;
        heartbeat.abort();
    }

    /// After a wake-up while other jobs run, waits a moment for more slots to free up
    /// and more jobs to arrive, so that one claim takes several jobs: each claim is a
    /// durable commit, and short jobs would otherwise cost one claim each.
    async fn gather_wake_ups(&self) {
        if self.slots.available_permits() < self.settings.runners.max(1) {
            tokio::time::sleep(GATHER_FOR).await;
        }
    }

    /// Claims up to `free` jobs and starts each on a task; returns how many.
    async fn dispatch(self: &Arc<Self>, free: usize) -> usize {
        let claimed = match queue::claim(&self.db, &self.id, free, self.settings.lease).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(error = %escaped(&error), "cannot claim jobs");
                return 0;
            }
        };
        let count = claimed.len();
        for job in claimed {
            let Ok(permit) = self.slots.clone().try_acquire_owned() else { break };
            tokio::spawn(self.clone().run_on_slot(job, permit));
        }
        count
    }

    async fn run_on_slot(self: Arc<Self>, job: Claimed, permit: OwnedSemaphorePermit) {
        let id = job.id;
        match self.run_claimed(job).await {
            Ok(outcome) => tracing::debug!(job = %id, ?outcome, "attempt ended"),
            Err(error) => {
                tracing::warn!(job = %id, error = %escaped(&error), "attempt's end not recorded; the lease will expire")
            }
        }
        drop(permit);
        self.wake.notify_one();
    }

    /// Waits for running jobs up to the grace period, then stops the rest.
    async fn drain(&self) {
        let all = self.settings.runners.max(1) as u32;
        let grace = self.settings.shutdown_grace;
        if tokio::time::timeout(grace, self.slots.acquire_many(all)).await.is_err() {
            tracing::info!("grace period over: handing running jobs back to the queue");
            self.stopping.cancel();
            let _ = self.slots.acquire_many(all).await;
        }
    }

    /// Renews leases and stops jobs whose owner cancelled them through another process.
    async fn heartbeat(self: Arc<Self>) {
        let renew_every = self.settings.lease / 3;
        let mut renewed = Instant::now();
        let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            tick.tick().await;
            let cancels = if renewed.elapsed() >= renew_every {
                renewed = Instant::now();
                let running: Vec<Uuid> = self.running.lock().expect("running jobs").keys().copied().collect();
                queue::renew_leases(&self.db, &self.id, &running, self.settings.lease).await
            } else {
                queue::cancel_requests(&self.db, &self.id).await
            };
            match cancels {
                Ok(ids) => ids.into_iter().for_each(|id| {
                    self.cancel_here(id);
                }),
                Err(error) => tracing::warn!(error = %escaped(&error), "heartbeat failed"),
            }
        }
    }
}

/// How running a job's kind ended, before anything of it is recorded.
enum AttemptEnd {
    Done(std::result::Result<fabula_contracts::pb::jobs::JobResult, KindError>),
    Stopped,
    LeaseLost,
}

fn owner_of(claimed: &Claimed) -> Uuid {
    claimed.job.owner_id.parse().unwrap_or_default()
}
