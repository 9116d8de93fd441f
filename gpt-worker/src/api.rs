//! JobService: submit, follow, cancel and delete jobs. Only users with model access
//! create jobs; everyone sees only their own (administrators see all), and another
//! user's job is NOT_FOUND.

use fabula_runtime::rules::Checks;
use std::{pin::Pin, sync::Arc, time::Duration};

use fabula_contracts::pb::jobs::{
    Apply, CancelJobRequest, CreateJobRequest, DeleteJobRequest, GetJobRequest, Job, JobSpec, JobState, JobUpdate,
    ListJobsRequest, ListJobsResponse, WaitJobRequest, WatchJobRequest, extract_events::Target,
    job_service_server::JobService, job_spec::Kind, job_update,
};
use fabula_runtime::{
    auth::{Caller, Principal, caller},
    errors::{self, FieldViolations},
    rules,
};
use fabula_store::{Db, Page, Result, error::not_found};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

use crate::{authn::WorkerAuthenticator, config::QueueSettings, runner::Worker, store};

const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// How often a watch looks for updates made by other processes.
const WATCH_POLL: Duration = Duration::from_millis(250);
/// How often an open watch asks whether its user is still accepted (the answer is
/// itself trusted for up to a second).
const STANDING_CHECK: Duration = Duration::from_millis(500);

pub struct JobsApi {
    pub db: Db,
    pub limits: QueueSettings,
    pub authn: Arc<WorkerAuthenticator>,
    pub worker: Arc<Worker>,
    /// Hears the id of every job whose change was just committed.
    pub applied: broadcast::Sender<Uuid>,
    /// Cancelled when the worker shuts down: open watches and waits end then, so they
    /// do not hold the server up; their clients ask another replica.
    pub stopping: CancellationToken,
}

impl JobsApi {
    /// Job `id` if `caller` may see it: their own, or any for an administrator.
    async fn visible_job(&self, caller: &Principal, id: &str) -> Result<Job> {
        let id = job_id(id).map_err(|problem| fabula_store::error::invalid("id", problem))?;
        let job = store::fetch(&self.db.reader, id).await?.ok_or_else(|| not_found("job"))?;
        if job.owner_id != caller.user_id.to_string() && !caller.is_admin() {
            return Err(not_found("job"));
        }
        Ok(job)
    }

    async fn create(&self, caller: Caller, request: CreateJobRequest) -> Result<Job> {
        let principal = *caller.require_user()?;
        let spec = validate(&request)?;
        let status = self.authn.status(principal.user_id).await?;
        if !status.gpt_enabled {
            return Err(errors::status(
                Code::PermissionDenied,
                "MODEL_ACCESS_REQUIRED",
                "an administrator must grant you model access first",
            )
            .into());
        }
        let request_id = (!request.request_id.is_empty()).then_some(request.request_id.as_str());
        let job = store::create(&self.db, &self.limits, principal.user_id, spec, request_id).await?;
        // A runner here wakes at once; on PostgreSQL, the other processes are told.
        self.worker.queued();
        Ok(job)
    }

    async fn list(&self, caller: Caller, request: ListJobsRequest) -> Result<ListJobsResponse> {
        let principal = *caller.require_user()?;
        let page =
            Page::parse(request.page_size, &request.page_token, &store::LISTING, &["ListJobs", &request.filter])?;
        let owner = (!principal.is_admin()).then_some(principal.user_id);
        let (jobs, next_page_token, total) = store::list(&self.db, owner, &page, &request.filter).await?;
        Ok(ListJobsResponse { jobs, next_page_token, total_size: total as i32 })
    }

    async fn cancel(&self, caller: Caller, request: CancelJobRequest) -> Result<Job> {
        let job = self.visible_job(caller.require_user()?, &request.id).await?;
        let id: Uuid = job.id.parse().unwrap_or_default();
        if let store::Cancelled::Requested = store::cancel(&self.db, id).await? {
            self.worker.cancel_here(id);
        }
        let _ = self.applied.send(id);
        store::fetch(&self.db.reader, id).await?.ok_or_else(|| not_found("job"))
    }

    async fn wait(&self, caller: Caller, request: WaitJobRequest) -> Result<Job> {
        let principal = *caller.require_user()?;
        let timeout = match request.timeout {
            None => DEFAULT_WAIT,
            Some(t) => wait_timeout(t).map_err(|problem| fabula_store::error::invalid("timeout", problem))?,
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut applied = self.applied.subscribe();
        loop {
            let job = self.visible_job(&principal, &request.id).await?;
            if is_finished(&job) || tokio::time::Instant::now() >= deadline {
                return Ok(job);
            }
            let next_look = deadline.min(tokio::time::Instant::now() + WATCH_POLL);
            let id = job.id.parse().unwrap_or_default();
            tokio::select! {
                () = self.stopping.cancelled() => return Err(shutting_down().into()),
                _ = tokio::time::timeout_at(next_look, changed(&mut applied, id)) => {}
            }
        }
    }
}

/// Resolves when job `id` changes here, or when changes were missed; other jobs'
/// changes are skipped without reading the database.
async fn changed(applied: &mut broadcast::Receiver<Uuid>, id: Uuid) {
    loop {
        match applied.recv().await {
            Ok(changed) if changed != id => continue,
            _ => return,
        }
    }
}

/// UNAVAILABLE for a watch or wait cut short by shutdown.
fn shutting_down() -> Status {
    errors::status(Code::Unavailable, "SHUTTING_DOWN", "this worker is shutting down; ask again")
}

fn is_finished(job: &Job) -> bool {
    matches!(JobState::try_from(job.state), Ok(JobState::Succeeded | JobState::Failed | JobState::Cancelled))
}

/// A job id: a UUID in its hyphenated form.
fn job_id(value: &str) -> Result<Uuid, String> {
    rules::text(value, &rules::jobs::get_job_request::ID)?;
    Uuid::try_parse(value).map_err(|_| "is not a valid id".to_owned())
}

/// How long a WaitJob waits: between none and the declared most (whole seconds).
fn wait_timeout(timeout: prost_types::Duration) -> Result<Duration, String> {
    let rule = &rules::jobs::wait_job_request::TIMEOUT;
    if timeout.nanos < 0 {
        return Err("must not be negative".into());
    }
    let seconds = rule.check_int(timeout.seconds)?;
    let wait = Duration::new(seconds.unsigned_abs(), timeout.nanos.unsigned_abs());
    if let Some(max) = rule.maximum.filter(|max| wait > Duration::from_secs(max.unsigned_abs())) {
        return Err(format!("must be at most {max} s"));
    }
    Ok(wait)
}

/// The spec of a create, checked field by field against the declared rules.
fn validate(request: &CreateJobRequest) -> Result<JobSpec> {
    use rules::jobs as declared;
    let mut violations = FieldViolations::new();
    let id = |violations: &mut FieldViolations, field: &str, value: &str| {
        violations.check(field, job_id(value));
    };
    match request.spec.as_ref().and_then(|s| s.kind.as_ref()) {
        None => violations.add("spec", "must name one job kind"),
        Some(Kind::DescribeWorld(s)) => id(&mut violations, "spec.describe_world.world_id", &s.world_id),
        Some(Kind::DescribeStory(s)) => id(&mut violations, "spec.describe_story.story_id", &s.story_id),
        Some(Kind::AnalyzeStory(s)) => id(&mut violations, "spec.analyze_story.story_id", &s.story_id),
        Some(Kind::BatchAnalyze(s)) => {
            id(&mut violations, "spec.batch_analyze.world_id", &s.world_id);
            declared::batch_analyze::STORY_IDS.check_list(
                "spec.batch_analyze.story_ids",
                &s.story_ids,
                &mut violations,
            );
        }
        Some(Kind::ExtractEvents(s)) => match &s.target {
            Some(Target::StoryId(story)) => id(&mut violations, "spec.extract_events.story_id", story),
            Some(Target::WorldId(world)) => id(&mut violations, "spec.extract_events.world_id", world),
            None => violations.add("spec.extract_events", "needs a story_id or a world_id"),
        },
        Some(Kind::Paraphrase(s)) => {
            violations.check("spec.paraphrase.text", rules::text(&s.text, &declared::paraphrase::TEXT));
            violations.check("spec.paraphrase.mode", rules::text(&s.mode, &declared::paraphrase::MODE));
        }
    }
    if let Some(spec) = &request.spec
        && Apply::try_from(spec.apply).is_err()
    {
        violations.add("spec.apply", format!("{} is not one of REVIEW, AUTO", spec.apply));
    }
    violations.check("request_id", rules::text(&request.request_id, &declared::create_job_request::REQUEST_ID));
    violations.finish()?;
    Ok(request.spec.clone().unwrap_or_default())
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<JobUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl JobService for JobsApi {
    async fn create_job(&self, request: Request<CreateJobRequest>) -> Result<Response<Job>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.create(caller, request.into_inner()).await?))
    }

    async fn get_job(&self, request: Request<GetJobRequest>) -> Result<Response<Job>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.visible_job(caller.require_user()?, &request.get_ref().id).await?))
    }

    async fn list_jobs(&self, request: Request<ListJobsRequest>) -> Result<Response<ListJobsResponse>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.list(caller, request.into_inner()).await?))
    }

    async fn delete_job(&self, request: Request<DeleteJobRequest>) -> Result<Response<()>, Status> {
        let caller = caller(&request);
        let job = self.visible_job(caller.require_user()?, &request.get_ref().id).await?;
        store::delete(&self.db, job.id.parse().unwrap_or_default()).await?;
        Ok(Response::new(()))
    }

    async fn cancel_job(&self, request: Request<CancelJobRequest>) -> Result<Response<Job>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.cancel(caller, request.into_inner()).await?))
    }

    type WatchJobStream = UpdateStream;

    async fn watch_job(&self, request: Request<WatchJobRequest>) -> Result<Response<Self::WatchJobStream>, Status> {
        let caller = caller(&request);
        let request = request.into_inner();
        if let Err(problem) = rules::jobs::watch_job_request::AFTER_SEQ.check_int(request.after_seq) {
            return Err(errors::invalid_field("after_seq", problem));
        }
        let principal = *caller.require_user()?;
        let job = self.visible_job(&principal, &request.id).await?;
        let (sender, receiver) = mpsc::channel(64);
        let watch = Watch {
            db: self.db.clone(),
            applied: self.applied.subscribe(),
            stopping: self.stopping.clone(),
            job_id: job.id.parse().unwrap_or_default(),
        };
        let authn = self.authn.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = watch.forward(request.after_seq, &sender) => {}
                refused = refused_later(&authn, principal.user_id) => {
                    let _ = sender.send(Err(refused)).await;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn wait_job(&self, request: Request<WaitJobRequest>) -> Result<Response<Job>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.wait(caller, request.into_inner()).await?))
    }
}

/// Resolves, with why, once story-service no longer accepts `user` (disabled, or
/// gone): a watch open at that moment ends within about a second. While
/// story-service cannot be asked, the watch goes on.
async fn refused_later(authn: &WorkerAuthenticator, user: Uuid) -> Status {
    loop {
        tokio::time::sleep(STANDING_CHECK).await;
        match authn.status(user).await {
            Err(status) if status.code() == Code::Unauthenticated => return status,
            _ => {}
        }
    }
}

/// One watcher of one job: the stored updates after a number, then new ones as they
/// are committed (woken locally, or by polling for other processes' writes). A watch
/// that starts after the final update, or whose job is deleted, ends there; one open
/// at shutdown ends with UNAVAILABLE, to be resumed elsewhere.
struct Watch {
    db: Db,
    applied: broadcast::Receiver<Uuid>,
    stopping: CancellationToken,
    job_id: Uuid,
}

impl Watch {
    /// Sends updates until the final one, or until the watcher goes away.
    async fn forward(mut self, mut after_seq: i64, sender: &mpsc::Sender<Result<JobUpdate, Status>>) {
        loop {
            let Some(mut updates) = self.read(after_seq, sender).await else { return };
            if updates.is_empty() && !self.may_change(sender).await {
                // It ended before this second read, which sees every update it has.
                let Some(last) = self.read(after_seq, sender).await else { return };
                if last.is_empty() {
                    return;
                }
                updates = last;
            }
            for update in updates {
                after_seq = update.seq;
                let last = matches!(update.kind, Some(job_update::Kind::Finished(_)));
                if sender.send(Ok(update)).await.is_err() || last {
                    return;
                }
            }
            if !self.next_change(sender).await {
                return;
            }
        }
    }

    /// The stored updates after `after_seq`; `None` after telling the watcher of an error.
    async fn read(&self, after_seq: i64, sender: &mpsc::Sender<Result<JobUpdate, Status>>) -> Option<Vec<JobUpdate>> {
        match store::updates_after(&self.db, self.job_id, after_seq, 100).await {
            Ok(updates) => Some(updates),
            Err(error) => {
                let _ = sender.send(Err(error.into())).await;
                None
            }
        }
    }

    /// Whether the job may still change: false once it is finished, or gone (the
    /// watcher is then told NOT_FOUND).
    async fn may_change(&self, sender: &mpsc::Sender<Result<JobUpdate, Status>>) -> bool {
        match store::fetch(&self.db.reader, self.job_id).await {
            Ok(Some(job)) => !is_finished(&job),
            Ok(None) => {
                let _ = sender.send(Err(not_found("job").into())).await;
                false
            }
            Err(error) => {
                let _ = sender.send(Err(error.into())).await;
                false
            }
        }
    }

    /// Waits for a change of this job; false when the watcher went away.
    async fn next_change(&mut self, sender: &mpsc::Sender<Result<JobUpdate, Status>>) -> bool {
        let poll = tokio::time::sleep(WATCH_POLL);
        tokio::pin!(poll);
        loop {
            tokio::select! {
                () = sender.closed() => return false,
                () = self.stopping.cancelled() => {
                    let _ = sender.send(Err(shutting_down())).await;
                    return false;
                }
                () = &mut poll => return true,
                woken = self.applied.recv() => match woken {
                    Ok(id) if id == self.job_id => return true,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return true,
                    Err(broadcast::error::RecvError::Closed) => return true,
                },
            }
        }
    }
}
