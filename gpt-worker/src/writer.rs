//! Group commit of what runners write. Every change a runner makes to its jobs (new
//! updates, output, progress, the end of an attempt) goes through one writer task
//! per process, which applies all changes waiting at that moment in one transaction.
//! On PostgreSQL a durable commit costs about a third of a millisecond; batching
//! keeps a thousand short jobs a second from needing a thousand commits.
//!
//! A change applies only while the run that makes it still holds the job's lease:
//! the lease is this worker's and the job is at the attempt the run claimed. A run
//! whose lease expired writes nothing, whether another worker took the job over or
//! this one claimed it again for a new run.
//!
//! A change may carry a model answer to save ([`SavedAnswer`]); it is committed, under
//! the same check, before the runner hears that the change was written.

use std::sync::Arc;

use fabula_contracts::pb::jobs::{JobError, JobResult, JobState, JobUpdate, Progress, job_update};
use fabula_runtime::telemetry::escaped;
use fabula_store::{Db, Error, Result, now_micros};
use sqlx::{Any, Transaction};
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use crate::store::{self, encode};

/// Changes applied in one transaction at most.
const BATCH: usize = 256;

/// What a runner has to say about one of its jobs.
#[derive(Debug)]
pub struct Change {
    pub job_id: Uuid,
    /// The attempt the run claimed; the change applies only while the job is at it.
    pub attempt: i64,
    /// Updates numbered since the last change, in order.
    pub updates: Vec<JobUpdate>,
    /// Output written since the last change.
    pub output: String,
    pub progress: Option<Progress>,
    /// A model answer to save for later runs of the job.
    pub answer: Option<SavedAnswer>,
    pub end: Option<JobDisposition>,
}

/// A valid answer of the model for one step of a job, saved for the job's later runs.
#[derive(Debug)]
pub struct SavedAnswer {
    /// Names the model call within the job, the same on every run.
    pub step: String,
    pub text: String,
}

/// What becomes of a job when its attempt ends: finished for good, queued again to
/// retry, or handed back to the queue.
#[derive(Debug)]
pub enum JobDisposition {
    /// Finished for good; the writer records the final job as update `seq`.
    Finished { state: JobState, result: Option<JobResult>, error: Option<JobError>, seq: i64 },
    /// Failed, to be tried again after `run_after` (micros); the output starts over.
    Retry { run_after: i64, error: JobError },
    /// Given back to the queue at shutdown; the attempt does not count.
    Release,
}

type Ack = oneshot::Sender<Result<bool>>;

/// A handle to the process's writer task.
#[derive(Clone)]
pub struct Writer {
    changes: mpsc::Sender<(Change, Ack)>,
}

impl Writer {
    /// Starts the writer for worker `worker_id`; `applied` hears the id of each job
    /// whose change was committed, to wake its watchers.
    pub fn spawn(db: Db, worker_id: Arc<str>, applied: broadcast::Sender<Uuid>) -> Self {
        let (changes, receiver) = mpsc::channel(4 * BATCH);
        tokio::spawn(run(db, worker_id, receiver, applied));
        Self { changes }
    }

    /// Applies `change`; `Ok(false)` when the lease was lost and nothing was written.
    pub async fn write(&self, change: Change) -> Result<bool> {
        let (ack, done) = oneshot::channel();
        self.changes.send((change, ack)).await.map_err(|_| Error::Internal("the writer stopped".into()))?;
        done.await.map_err(|_| Error::Internal("the writer stopped".into()))?
    }
}

async fn run(
    db: Db,
    worker_id: Arc<str>,
    mut receiver: mpsc::Receiver<(Change, Ack)>,
    applied: broadcast::Sender<Uuid>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let changes: Vec<&Change> = batch.iter().map(|(change, _)| change).collect();
        let outcome = apply_all(&db, &worker_id, &changes).await;
        drop(changes);
        match outcome {
            Ok(outcomes) => {
                for ((change, ack), applied_one) in batch.drain(..).zip(outcomes) {
                    acknowledge(change.job_id, ack, Ok(applied_one), &applied);
                }
            }
            // One bad change must not sink the others: apply them one by one.
            Err(error) if batch.len() > 1 => {
                tracing::warn!(
                    error = %escaped(&error),
                    changes = batch.len(),
                    "a batch of job changes failed; applying them one by one"
                );
                for (change, ack) in batch.drain(..) {
                    let outcome = apply_all(&db, &worker_id, &[&change]).await;
                    let _ = outcome
                        .as_ref()
                        .map_err(|error| tracing::warn!(error = %escaped(&error), "a job change was not written"));
                    acknowledge(change.job_id, ack, outcome.map(|o| o[0]), &applied);
                }
            }
            Err(error) => {
                tracing::warn!(error = %escaped(&error), "a job change was not written");
                for (change, ack) in batch.drain(..) {
                    acknowledge(change.job_id, ack, Err(error_for_runner()), &applied);
                }
            }
        }
    }
}

fn error_for_runner() -> Error {
    Error::Internal("job changes were not written".into())
}

/// Tells the runner how its change went, and the watchers of the job when it was written.
fn acknowledge(job_id: Uuid, ack: Ack, outcome: Result<bool>, applied: &broadcast::Sender<Uuid>) {
    if matches!(outcome, Ok(true)) {
        let _ = applied.send(job_id);
    }
    let _ = ack.send(outcome.map_err(|_| error_for_runner()));
}

/// Applies `changes` in one transaction: whether each found its lease still held.
/// Each job's row is one statement; the updates of all of them, and the final job
/// of those that finished, are written with a few multi-row statements.
async fn apply_all(db: &Db, worker_id: &str, changes: &[&Change]) -> Result<Vec<bool>> {
    let mut tx = db.begin().await?;
    let mut held = Vec::with_capacity(changes.len());
    for change in changes {
        held.push(apply_to_row(&mut tx, worker_id, change).await?);
    }
    let kept: Vec<&Change> = changes.iter().zip(&held).filter(|(_, held)| **held).map(|(change, _)| *change).collect();
    for change in &kept {
        if let Some(answer) = &change.answer {
            store::save_answer(&mut tx, change.job_id, &answer.step, &answer.text).await?;
        }
    }
    let finals = final_updates(&mut tx, &kept).await?;
    let mut updates: Vec<(Uuid, &JobUpdate)> =
        kept.iter().flat_map(|change| change.updates.iter().map(|update| (change.job_id, update))).collect();
    updates.extend(finals.iter().map(|(id, update)| (*id, update)));
    store::insert_updates(&mut tx, &updates).await?;
    tx.commit().await?;
    Ok(held)
}

/// Writes one change to its job's row if its run still holds the lease.
async fn apply_to_row(tx: &mut Transaction<'static, Any>, worker_id: &str, change: &Change) -> Result<bool> {
    let last_seq = change.updates.last().map(|u| u.seq);
    match &change.end {
        None => record_progress(tx, worker_id, change, last_seq).await,
        Some(JobDisposition::Finished { state, result, error, seq }) => {
            finish(tx, worker_id, change, *state, result.as_ref(), error.as_ref(), *seq).await
        }
        Some(JobDisposition::Retry { run_after, error }) => {
            requeue(tx, worker_id, change, *run_after, Some(error), last_seq, true).await
        }
        Some(JobDisposition::Release) => requeue(tx, worker_id, change, now_micros(), None, last_seq, false).await,
    }
}

/// The last update of each finished job among `changes`: the job as it ended.
async fn final_updates(tx: &mut Transaction<'static, Any>, changes: &[&Change]) -> Result<Vec<(Uuid, JobUpdate)>> {
    let finished: Vec<(Uuid, i64)> = changes
        .iter()
        .filter_map(|change| match &change.end {
            Some(JobDisposition::Finished { seq, .. }) => Some((change.job_id, *seq)),
            _ => None,
        })
        .collect();
    let ids: Vec<Uuid> = finished.iter().map(|(id, _)| *id).collect();
    let jobs = store::fetch_many(tx, &ids).await?;
    let mut finals = Vec::with_capacity(jobs.len());
    for job in jobs {
        let id: Uuid = job.id.parse().map_err(|_| Error::Internal("bad job id".into()))?;
        let seq = finished.iter().find(|(job_id, _)| *job_id == id).map(|(_, seq)| *seq).unwrap_or_default();
        finals.push((id, JobUpdate { seq, kind: Some(job_update::Kind::Finished(Box::new(job))) }));
    }
    Ok(finals)
}

async fn record_progress(
    tx: &mut Transaction<'static, Any>,
    worker_id: &str,
    change: &Change,
    last_seq: Option<i64>,
) -> Result<bool> {
    let (percent, message) = progress_columns(change.progress.as_ref());
    let updated = sqlx::query(
        "UPDATE jobs SET output = output || $1, last_seq = COALESCE($2, last_seq), \
         progress_percent = COALESCE($3, progress_percent), progress_message = COALESCE($4, progress_message) \
         WHERE id = $5 AND lease_owner = $6 AND attempts = $7 AND state = 'RUNNING'",
    )
    .bind(change.output.as_str())
    .bind(last_seq)
    .bind(percent)
    .bind(message)
    .bind(change.job_id.to_string())
    .bind(worker_id)
    .bind(change.attempt)
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected() == 1)
}

async fn finish(
    tx: &mut Transaction<'static, Any>,
    worker_id: &str,
    change: &Change,
    state: JobState,
    result: Option<&JobResult>,
    error: Option<&JobError>,
    seq: i64,
) -> Result<bool> {
    let (percent, message) = progress_columns(change.progress.as_ref());
    let updated = sqlx::query(
        "UPDATE jobs SET state = $1, output = output || $2, last_seq = $3, \
         progress_percent = COALESCE($4, progress_percent), progress_message = COALESCE($5, progress_message), \
         result = $6, error_code = $7, error_message = $8, end_time = $9, lease_owner = NULL, lease_expires = NULL \
         WHERE id = $10 AND lease_owner = $11 AND attempts = $12 AND state = 'RUNNING'",
    )
    .bind(state.as_str_name())
    .bind(change.output.as_str())
    .bind(seq)
    .bind(percent)
    .bind(message)
    .bind(result.map(encode))
    .bind(error.map(|e| e.code.clone()))
    .bind(error.map(|e| e.message.clone()))
    .bind(now_micros())
    .bind(change.job_id.to_string())
    .bind(worker_id)
    .bind(change.attempt)
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Hands a job back to the queue, to run again after `run_after`. A retry counts the
/// attempt and keeps its error; a release (shutdown) does not count it.
async fn requeue(
    tx: &mut Transaction<'static, Any>,
    worker_id: &str,
    change: &Change,
    run_after: i64,
    error: Option<&JobError>,
    last_seq: Option<i64>,
    counts: bool,
) -> Result<bool> {
    let (percent, message) = progress_columns(change.progress.as_ref());
    let updated = sqlx::query(
        "UPDATE jobs SET state = 'QUEUED', output = '', run_after = $1, lease_owner = NULL, lease_expires = NULL, \
         attempts = attempts - $2, error_code = COALESCE($3, error_code), error_message = COALESCE($4, error_message), \
         last_seq = COALESCE($5, last_seq), progress_percent = COALESCE($6, progress_percent), \
         progress_message = COALESCE($7, progress_message) \
         WHERE id = $8 AND lease_owner = $9 AND attempts = $10 AND state = 'RUNNING'",
    )
    .bind(run_after)
    .bind(if counts { 0_i64 } else { 1 })
    .bind(error.map(|e| e.code.clone()))
    .bind(error.map(|e| e.message.clone()))
    .bind(last_seq)
    .bind(percent)
    .bind(message)
    .bind(change.job_id.to_string())
    .bind(worker_id)
    .bind(change.attempt)
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected() == 1)
}

fn progress_columns(progress: Option<&Progress>) -> (Option<i64>, Option<String>) {
    (progress.map(|p| i64::from(p.percent)), progress.map(|p| p.message.clone()))
}

#[cfg(test)]
impl Writer {
    /// A writer nothing reads from, for tests that only look at what is pending.
    pub(crate) fn unconnected() -> Self {
        Self { changes: mpsc::channel(1).0 }
    }
}
