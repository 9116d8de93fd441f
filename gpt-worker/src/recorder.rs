//! A running job's updates: numbered as they happen, output deltas coalesced between
//! flushes, and handed to the [`Writer`] in one change per flush (or with the end
//! of the attempt). A job's kind calls [`Recorder::progress`], [`Recorder::note`],
//! [`Recorder::writing`], [`Recorder::output`] and [`Recorder::save_answer`]; the runner
//! flushes and ends. While the model writes, progress moves with its text.
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
    /// The message of the last progress made, kept while progress moves with the text.
    message: String,
    /// The span progress moves through while the model writes, if a kind set one.
    writing: Option<Writing>,
}

/// Progress that moves with the model's text: from `from` toward `until` percent as
/// the text grows (in characters) toward `expected`, slowing as it nears `until` and
/// never reaching it: how long an answer will be is not known before it ends.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Writing {
    from: i32,
    until: i32,
    expected: usize,
    written: usize,
}

/// The smallest step, in percent, worth an update of its own while the model writes.
const WRITING_STEP: i32 = 2;

impl Writing {
    fn percent(&self) -> i32 {
        let share = 1.0 - (-3.0 * self.written as f64 / self.expected.max(1) as f64).exp();
        let span = f64::from(self.until - self.from);
        (self.from + (span * share).floor() as i32).min(self.until - 1).max(self.from)
    }
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
        let mut pending = self.pending.lock().expect("recorder");
        pending.writing = None;
        set_progress(&mut pending, percent, message.into());
    }

    /// Progress at `percent` with `message`, moving toward `until` as the model writes
    /// (see [`Writing`] and [`Recorder::expect_answer`]), until the next progress.
    pub fn writing(&self, percent: i32, until: i32, message: impl Into<String>) {
        let mut pending = self.pending.lock().expect("recorder");
        set_progress(&mut pending, percent, message.into());
        let from = pending.percent;
        pending.writing = (until > from).then_some(Writing { from, until, expected: 0, written: 0 });
    }

    /// The model is about to write an answer of about `chars` characters: progress
    /// moves with it from where it is, if a kind set a span with [`Recorder::writing`].
    pub fn expect_answer(&self, chars: usize) {
        let mut pending = self.pending.lock().expect("recorder");
        let percent = pending.percent;
        if let Some(writing) = pending.writing.as_mut() {
            *writing = Writing { from: percent.max(writing.from), expected: chars, written: 0, ..*writing };
        }
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
        let written = delta.chars().count();
        if let Some(JobUpdate { kind: Some(Kind::OutputDelta(last)), .. }) = pending.updates.last_mut() {
            last.push_str(&delta);
        } else {
            push(&mut pending, Kind::OutputDelta(delta));
        }
        let Some(writing) = pending.writing.as_mut().filter(|w| w.expected > 0) else { return };
        writing.written += written;
        let percent = writing.percent();
        if percent >= pending.percent + WRITING_STEP {
            let message = pending.message.clone();
            set_progress(&mut pending, percent, message);
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

fn set_progress(pending: &mut Pending, percent: i32, message: String) {
    let progress = Progress { percent: percent.clamp(0, 100), message };
    pending.percent = progress.percent;
    pending.message.clone_from(&progress.message);
    pending.progress = Some(progress.clone());
    push(pending, Kind::Progress(progress));
}

fn push(pending: &mut Pending, kind: Kind) {
    pending.seq += 1;
    let seq = pending.seq;
    pending.updates.push(JobUpdate { seq, kind: Some(kind) });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder() -> Recorder {
        Recorder::new(Uuid::now_v7(), 1, 0, Writer::unconnected())
    }

    fn percents(updates: &[JobUpdate]) -> Vec<(i32, String)> {
        updates
            .iter()
            .filter_map(|u| match &u.kind {
                Some(Kind::Progress(p)) => Some((p.percent, p.message.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn progress_moves_with_the_models_text_and_stops_short_of_the_next_step() {
        let recorder = recorder();
        recorder.writing(20, 90, "writing");
        recorder.expect_answer(200);
        let delta = "word word ";
        for _ in 0..100 {
            recorder.output(delta);
        }
        let change = recorder.take(None);
        assert_eq!(change.output, delta.repeat(100), "the text is kept whole");
        let progress = percents(&change.updates);
        assert!(progress.len() > 10, "progress moved many times as the text grew: {progress:?}");
        assert!(progress.iter().all(|(_, message)| message == "writing"), "the message stays: {progress:?}");
        let values: Vec<i32> = progress.iter().map(|(percent, _)| *percent).collect();
        assert_eq!(values[0], 20);
        assert!(values.windows(2).all(|w| w[1] >= w[0] + WRITING_STEP), "it only moves forward, by steps: {values:?}");
        let last = *values.last().unwrap();
        assert!((88..90).contains(&last), "five times the expected text comes close to, never at, 90: {values:?}");

        recorder.writing(last, 95, "asking again");
        recorder.expect_answer(100);
        recorder.output(&"x".repeat(40));
        let again = percents(&recorder.take(None).updates);
        let moved = again.last().map(|(p, _)| *p).unwrap_or_default();
        assert!(moved > last + 2 && moved < 95, "a second answer moves on from where the first left off: {again:?}");

        recorder.progress(90, "applying");
        recorder.output("more text after the model is done");
        let after = percents(&recorder.take(None).updates);
        assert_eq!(after, vec![(90, "applying".to_owned())], "the next progress ends the moving");
    }

    #[test]
    fn output_with_no_writing_span_moves_nothing_and_shares_one_update() {
        let recorder = recorder();
        recorder.progress(10, "asking");
        recorder.output("one ");
        recorder.output("two");
        let change = recorder.take(None);
        assert_eq!(percents(&change.updates), vec![(10, "asking".to_owned())]);
        assert_eq!(change.updates.len(), 2, "the deltas share one update: {:?}", change.updates);
    }
}
