//! A running job's updates: numbered as they happen, output deltas coalesced between
//! flushes, and handed to the [`Writer`] in one change per flush (or with the end
//! of the attempt). A job's kind calls [`Recorder::progress`], [`Recorder::note`],
//! [`Recorder::output`] and [`Recorder::save_answer`]; the runner flushes and ends.
//! Every change names the attempt the run claimed, so a stale run writes nothing.

use std::sync::Mutex;

use fabula_contracts::pb::jobs::{JobState, JobUpdate, Progress, job_update::Kind};
use fabula_store::Result;
use uuid::Uuid;

use crate::writer::{Change, JobDisposition, SavedAnswer, Writer};

pub struct Recorder {
    job_id: Uuid,
    attempt: i64,
    writer: Writer,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    /// The number of the last update made.
    seq: i64,
    updates: Vec<JobUpdate>,
    output: String,
    progress: Option<Progress>,
    /// The percent of the last progress made, kept by notes.
    percent: i32,
}

impl Recorder {
    /// A recorder for the run of job `job_id` at `attempt`, whose last stored update
    /// is `last_seq`.
    pub fn new(job_id: Uuid, attempt: i64, last_seq: i64, writer: Writer) -> Self {
        Self { job_id, attempt, writer, pending: Mutex::new(Pending { seq: last_seq, ..Pending::default() }) }
    }

    pub fn job_id(&self) -> Uuid {
        self.job_id
    }

    /// The job entered `state`. RUNNING starts an attempt, whose output starts over.
    pub fn state(&self, state: JobState) {
        self.push(Kind::State(state.into()));
    }

    pub fn progress(&self, percent: i32, message: impl Into<String>) {
        let progress = Progress { percent: percent.clamp(0, 100), message: message.into() };
        let mut pending = self.pending.lock().expect("recorder");
        pending.percent = progress.percent;
        pending.progress = Some(progress.clone());
        push(&mut pending, Kind::Progress(progress));
    }

    /// Progress with a message only: the percent stays as it was.
    pub fn note(&self, message: impl Into<String>) {
        let percent = self.pending.lock().expect("recorder").percent;
        self.progress(percent, message);
    }

    /// The model wrote `delta`; consecutive deltas share one update until a flush. NUL
    /// characters are dropped: PostgreSQL cannot store them in text.
    pub fn output(&self, delta: &str) {
        let delta = delta.replace('\0', "");
        if delta.is_empty() {
            return;
        }
        let mut pending = self.pending.lock().expect("recorder");
        pending.output.push_str(&delta);
        if let Some(JobUpdate { kind: Some(Kind::OutputDelta(last)), .. }) = pending.updates.last_mut() {
            last.push_str(&delta);
        } else {
            push(&mut pending, Kind::OutputDelta(delta));
        }
    }

    fn push(&self, kind: Kind) {
        push(&mut self.pending.lock().expect("recorder"), kind);
    }

    /// Writes what happened since the last flush; `Ok(false)` when the lease was lost.
    pub async fn flush(&self) -> Result<bool> {
        let change = self.take(None);
        if change.updates.is_empty() {
            return Ok(true);
        }
        self.writer.write(change).await
    }

    /// Saves the model's answer for `step` with what is pending, and returns once it
    /// is committed; `Ok(false)` when the lease was lost and nothing was saved.
    pub async fn save_answer(&self, step: &str, text: String) -> Result<bool> {
        let mut change = self.take(None);
        change.answer = Some(SavedAnswer { step: step.to_owned(), text });
        self.writer.write(change).await
    }

    /// Ends the attempt: what is pending, then `end`.
    pub async fn end(&self, end: JobDisposition) -> Result<bool> {
        self.writer.write(self.take(Some(end))).await
    }

    /// Ends the job for good in `state`, recording the final job as the last update.
    pub fn finished(
        &self,
        state: JobState,
        result: Option<fabula_contracts::pb::jobs::JobResult>,
        error: Option<fabula_contracts::pb::jobs::JobError>,
    ) -> JobDisposition {
        let mut pending = self.pending.lock().expect("recorder");
        push(&mut pending, Kind::State(state.into()));
        pending.seq += 1;
        JobDisposition::Finished { state, result, error, seq: pending.seq }
    }

    fn take(&self, end: Option<JobDisposition>) -> Change {
        let mut pending = self.pending.lock().expect("recorder");
        Change {
            job_id: self.job_id,
            attempt: self.attempt,
            updates: std::mem::take(&mut pending.updates),
            output: std::mem::take(&mut pending.output),
            progress: pending.progress.take(),
            answer: None,
            end,
        }
    }
}

fn push(pending: &mut Pending, kind: Kind) {
    pending.seq += 1;
    let seq = pending.seq;
    pending.updates.push(JobUpdate { seq, kind: Some(kind) });
}
