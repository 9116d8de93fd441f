//! The job kinds: what each one asks the model, and what it writes back to
//! story-service. [`run`] picks the kind; each module has one entry point.
//!
//! A kind reports progress and output through the job's [`Recorder`], reads and
//! writes story-service as the job's owner, and ends with a result or a
//! [`KindError`] that says whether trying again could help.
//!
//! Every model call goes through [`ask`], which saves each valid answer before the
//! kind writes anything from it. A job run again (after a crash, a retry or a
//! shutdown) gets the saved answers back instead of new ones, so what it derives from
//! them, the request ids of its creates above all, is what the earlier run derived.

mod analyze;
mod context;
mod describe;
mod events;
mod paraphrase;
mod propose;

use std::{sync::Arc, time::Duration};

use fabula_contracts::pb::jobs::{Apply, JobResult, JobSpec, job_result, job_spec::Kind};
use fabula_runtime::telemetry::escaped;
use fabula_store::{Db, Error as StoreError};
use tonic::{Code, Status};
use uuid::Uuid;

use crate::{
    llm::{ChatMessage, ChatRequest, ChatRole, LanguageModel, LlmError},
    outputs::OutputError,
    recorder::Recorder,
    store,
    story_client::StoryClient,
};

/// What a kind may use while it runs.
pub struct JobContext<'a> {
    pub job_id: Uuid,
    /// Whether an earlier run of the job may have saved answers.
    pub resumed: bool,
    pub owner: Uuid,
    /// Whether the job's changes wait for review or are applied at once.
    pub apply: Apply,
    pub llm: &'a Arc<dyn LanguageModel>,
    pub story: &'a StoryClient,
    pub recorder: &'a Recorder,
    pub db: &'a Db,
}

impl JobContext<'_> {
    /// `message` as a request of this job for its owner, to story-service.
    pub fn as_owner<T>(&self, message: T) -> tonic::Request<T> {
        self.story.for_job(self.owner, self.job_id, message)
    }
}

/// Why a kind's run failed, and whether another attempt could help. Messages are safe
/// to show the job's owner: never raw upstream text or secrets.
#[derive(Debug, Clone, PartialEq)]
pub enum KindError {
    /// Worth another attempt (model overloaded, story-service restarting…).
    Transient { code: &'static str, message: String, retry_after: Option<Duration> },
    /// Will fail the same way again.
    Permanent { code: &'static str, message: String },
}

impl KindError {
    pub fn permanent(code: &'static str, message: impl Into<String>) -> Self {
        Self::Permanent { code, message: message.into() }
    }

    /// The worker's own database failed; logged here, shown without its text.
    pub fn storage(error: StoreError) -> Self {
        tracing::error!(error = %escaped(&error), "the worker's storage failed");
        Self::Transient { code: "WORKER_STORAGE", message: "the worker's storage failed".into(), retry_after: None }
    }
}

impl From<LlmError> for KindError {
    fn from(error: LlmError) -> Self {
        match error {
            LlmError::Transient { retry_after, .. } => {
                Self::Transient { code: "MODEL_UNAVAILABLE", message: error.to_string(), retry_after }
            }
            LlmError::Permanent { .. } => Self::Permanent { code: "MODEL_ERROR", message: error.to_string() },
        }
    }
}

impl From<Status> for KindError {
    fn from(status: Status) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Internal | Code::Cancelled => {
                Self::Transient {
                    code: "STORY_SERVICE_UNAVAILABLE",
                    message: "story-service did not answer".into(),
                    retry_after: None,
                }
            }
            Code::NotFound => Self::permanent("NOT_FOUND", message),
            Code::PermissionDenied => Self::permanent("PERMISSION_DENIED", message),
            Code::Unauthenticated => Self::permanent("OWNER_NOT_AUTHORIZED", message),
            Code::Aborted => Self::permanent("EDIT_CONFLICT", message),
            Code::ResourceExhausted => Self::permanent("QUOTA_EXCEEDED", message),
            _ => Self::permanent("STORY_SERVICE_REFUSED", message),
        }
    }
}

/// What a kind ends with: its result, and the proposal it made (empty when none).
pub struct Done {
    pub kind: job_result::Kind,
    pub proposal_id: String,
}

impl Done {
    fn new(kind: job_result::Kind, proposal: Option<&fabula_contracts::pb::story::Proposal>) -> Self {
        Self { kind, proposal_id: proposal.map(|p| p.id.clone()).unwrap_or_default() }
    }
}

/// Runs the kind of `spec` to its result.
pub async fn run(ctx: &JobContext<'_>, spec: &JobSpec) -> Result<JobResult, KindError> {
    let model = ctx.llm.model().to_owned();
    let done = match spec.kind.as_ref().ok_or_else(|| KindError::permanent("INVALID_SPEC", "the job names no kind"))? {
        Kind::DescribeWorld(spec) => describe::world(ctx, spec).await?,
        Kind::DescribeStory(spec) => describe::story(ctx, spec).await?,
        Kind::AnalyzeStory(spec) => analyze::one(ctx, spec).await?,
        Kind::BatchAnalyze(spec) => analyze::batch(ctx, spec).await?,
        Kind::ExtractEvents(spec) => events::extract(ctx, spec).await?,
        Kind::Paraphrase(spec) => Done::new(paraphrase::run(ctx, spec).await?, None),
    };
    Ok(JobResult { model, proposal_id: done.proposal_id, kind: Some(done.kind) })
}

/// Which model call of a job an answer is for, and whether it is saved.
pub enum Step<'a> {
    /// Saved under this name (unique and stable within the job): the kind writes what
    /// it derives from the answer to story-service.
    Saved(&'a str),
    /// Not saved: nothing is written from the answer but the job's own result, so a
    /// run again may as well ask again.
    Unsaved,
}

/// The answer to the model call `step`, parsed with `parse`: for a saved step, the one
/// an earlier run saved, or else the model's, saved before it is returned.
pub async fn ask<T>(
    ctx: &JobContext<'_>,
    step: Step<'_>,
    request: ChatRequest,
    parse: impl Fn(&str) -> Result<T, OutputError>,
) -> Result<T, KindError> {
    let Step::Saved(step) = step else {
        return Ok(ask_model(ctx, request, &parse).await?.1);
    };
    if let Some(parsed) = saved_answer(ctx, step, &parse).await? {
        return Ok(parsed);
    }
    let (text, parsed) = ask_model(ctx, request, &parse).await?;
    match ctx.recorder.save_answer(step, text).await {
        Ok(true) => Ok(parsed),
        // The runner finds the lease lost when it records the end, and stops there.
        Ok(false) => Err(KindError::Transient {
            code: "LEASE_LOST",
            message: "another run of the job took it over".into(),
            retry_after: None,
        }),
        Err(error) => Err(KindError::storage(error)),
    }
}

/// The answer an earlier run saved for `step`, parsed; `None` when there is none, or
/// when it no longer parses (the model is asked again).
async fn saved_answer<T>(
    ctx: &JobContext<'_>,
    step: &str,
    parse: impl Fn(&str) -> Result<T, OutputError>,
) -> Result<Option<T>, KindError> {
    if !ctx.resumed {
        return Ok(None);
    }
    let Some(text) = store::saved_answer(ctx.db, ctx.job_id, step).await.map_err(KindError::storage)? else {
        return Ok(None);
    };
    match parse(&text) {
        Ok(parsed) => {
            ctx.recorder.note("reusing the model's answer from an earlier attempt");
            ctx.recorder.output(&text);
            Ok(Some(parsed))
        }
        Err(error) => {
            tracing::warn!(
                job = %ctx.job_id,
                step,
                error = %escaped(&error),
                "a saved answer no longer parses; asking again"
            );
            Ok(None)
        }
    }
}

/// About how long an answer to `request` runs, in characters: half its token budget,
/// at about four characters a token. Progress moves with the text toward it.
fn expected_chars(request: &ChatRequest) -> usize {
    usize::try_from(request.max_tokens).unwrap_or(0) * 2
}

/// Asks the model and parses its answer with `parse`; when the answer does not parse,
/// asks once more with the error, then gives up (INVALID_MODEL_OUTPUT). Returns the
/// valid answer's text and what it parsed to.
async fn ask_model<T>(
    ctx: &JobContext<'_>,
    mut request: ChatRequest,
    parse: impl Fn(&str) -> Result<T, OutputError>,
) -> Result<(String, T), KindError> {
    let recorder = ctx.recorder;
    recorder.expect_answer(expected_chars(&request));
    let first = ctx.llm.complete(&request, &mut |delta| recorder.output(delta)).await?.text;
    let error = match parse(&first) {
        Ok(parsed) => return Ok((first, parsed)),
        Err(error) => error,
    };
    tracing::info!(job = %ctx.job_id, error = %escaped(&error), "model output invalid; asking for a repair");
    request.messages.push(ChatMessage { role: ChatRole::Assistant, content: first });
    request.messages.push(ChatMessage {
        role: ChatRole::User,
        content: format!("That answer was not valid: {error}. Answer again with only the corrected output."),
    });
    recorder.output("\n");
    recorder.expect_answer(expected_chars(&request));
    let second = ctx.llm.complete(&request, &mut |delta| recorder.output(delta)).await?.text;
    match parse(&second) {
        Ok(parsed) => Ok((second, parsed)),
        Err(error) => Err(KindError::permanent(
            "INVALID_MODEL_OUTPUT",
            format!("the model's answer stayed invalid: {}", error.for_owner()),
        )),
    }
}
