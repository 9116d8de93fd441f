//! Who may do what with jobs: model access granted by an administrator, the limits
//! on active and daily jobs, another user's job as NOT_FOUND, anonymous callers,
//! and specs that name the field they get wrong.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    Backend, BadInput, as_caller, authed, both_databases, expect_code, expect_invalid, paraphrase, private_world,
    spawn_stack, spawn_stack_with, submit_to,
};
use fabula_contracts::pb::jobs::{
    AnalyzeStory, BatchAnalyze, CancelJobRequest, CreateJobRequest, DeleteJobRequest, DescribeStory, DescribeWorld,
    ExtractEvents, GetJobRequest, JobSpec, JobState, ListJobsRequest, Paraphrase, WaitJobRequest, WatchJobRequest,
    extract_events::Target, job_spec::Kind,
};
use fabula_contracts::pb::story::{GetWorldRequest, ShareRole};
use fabula_testkit::fake_model::{FakeOpenAi, Reply};
use tonic::Code;
use uuid::Uuid;

both_databases!(
    model_access_is_granted_and_revoked_by_an_administrator,
    active_jobs_are_limited_per_user,
    daily_jobs_are_limited_per_user,
    another_users_job_is_not_found,
    anonymous_callers_are_unauthenticated,
    bad_specs_name_the_field,
    a_request_id_makes_create_idempotent,
    only_finished_jobs_can_be_deleted,
    a_job_writes_only_where_its_owner_could,
    an_open_watch_ends_when_its_user_is_disabled,
);

/// How long the worker trusts what story-service said of a user, with a margin.
const STATUS_TTL: Duration = Duration::from_secs(3);

fn create(kind: Kind) -> CreateJobRequest {
    CreateJobRequest { spec: Some(JobSpec { kind: Some(kind), ..JobSpec::default() }), request_id: String::new() }
}

async fn model_access_is_granted_and_revoked_by_an_administrator(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let user = stack.register("ana").await;
    let mut jobs = stack.jobs();

    let denied = jobs.create_job(authed(create(paraphrase("Hello there.")), &user.token)).await;
    expect_code(denied, Code::PermissionDenied, "MODEL_ACCESS_REQUIRED", "create without model access");

    stack.set_model_access(&user, true).await;
    // The worker trusts what story-service said of a user for a second.
    let granted_by = Instant::now() + STATUS_TTL;
    let job = loop {
        match jobs.create_job(authed(create(paraphrase("Hello there.")), &user.token)).await {
            Ok(job) => break job.into_inner(),
            Err(status) if status.code() == Code::PermissionDenied && Instant::now() < granted_by => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("create with model access: {status:?}"),
        }
    };
    assert_eq!(job.owner_id, user.id);
    assert_eq!(stack.wait(&user, &job.id).await.state(), JobState::Succeeded);

    stack.set_model_access(&user, false).await;
    let revoked_by = Instant::now() + STATUS_TTL;
    loop {
        match jobs.create_job(authed(create(paraphrase("Hello again.")), &user.token)).await {
            Err(status) if status.code() == Code::PermissionDenied => break,
            Ok(_) if Instant::now() < revoked_by => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("create after model access was revoked: {other:?}"),
        }
    }
}

async fn active_jobs_are_limited_per_user(backend: Backend) {
    let model = FakeOpenAi::start(Reply::hang()).await;
    let stack = spawn_stack_with(backend, |s| s.llm.base_url = Some(model.base_url.clone())).await;
    let user = stack.register_with_model_access("ana").await;
    let other = stack.register_with_model_access("bob").await;
    let mut jobs = stack.jobs();
    let mut active = Vec::new();
    for i in 0..3 {
        active.push(submit_to(&mut jobs, &user, paraphrase(&format!("Text number {i}."))).await);
    }

    let refused = jobs.create_job(authed(create(paraphrase("One too many.")), &user.token)).await;
    expect_code(refused, Code::ResourceExhausted, "TOO_MANY_ACTIVE_JOBS", "a fourth active job");
    submit_to(&mut jobs, &other, paraphrase("Another user's job.")).await;

    let cancel = CancelJobRequest { id: active[0].id.clone() };
    jobs.cancel_job(authed(cancel, &user.token)).await.expect("cancel a job");
    assert_eq!(stack.wait(&user, &active[0].id).await.state(), JobState::Cancelled);
    submit_to(&mut jobs, &user, paraphrase("Room for one more.")).await;
}

async fn daily_jobs_are_limited_per_user(backend: Backend) {
    let stack = spawn_stack_with(backend, |s| s.queue.daily_jobs_per_user = 2).await;
    let user = stack.register_with_model_access("ana").await;
    for text in ["One.", "Two."] {
        stack.run_job(&user, paraphrase(text)).await;
    }

    let refused = stack.jobs().create_job(authed(create(paraphrase("Three.")), &user.token)).await;

    expect_code(refused, Code::ResourceExhausted, "DAILY_JOB_QUOTA_EXCEEDED", "a third job today");
    let mut jobs = stack.jobs();
    let listed = jobs.list_jobs(authed(ListJobsRequest::default(), &user.token)).await.expect("list").into_inner();
    for job in listed.jobs {
        jobs.delete_job(authed(DeleteJobRequest { id: job.id }, &user.token)).await.expect("delete a finished job");
    }
    let still = jobs.create_job(authed(create(paraphrase("Three.")), &user.token)).await;
    expect_code(still, Code::ResourceExhausted, "DAILY_JOB_QUOTA_EXCEEDED", "deleting jobs gives no new quota");
}

async fn another_users_job_is_not_found(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let owner = stack.register_with_model_access("ana").await;
    let stranger = stack.register_with_model_access("bob").await;
    let job = stack.run_job(&owner, paraphrase("A private thought.")).await;
    let mut jobs = stack.jobs();
    let token = &stranger.token;

    for id in [job.id.clone(), Uuid::now_v7().to_string()] {
        let context = |rpc: &str| format!("{rpc} of {id} by a stranger");
        let get = jobs.get_job(authed(GetJobRequest { id: id.clone() }, token)).await;
        expect_code(get, Code::NotFound, "NOT_FOUND", &context("GetJob"));
        let cancel = jobs.cancel_job(authed(CancelJobRequest { id: id.clone() }, token)).await;
        expect_code(cancel, Code::NotFound, "NOT_FOUND", &context("CancelJob"));
        let watch = jobs.watch_job(authed(WatchJobRequest { id: id.clone(), after_seq: 0 }, token)).await;
        expect_code(watch.map(|_| ()), Code::NotFound, "NOT_FOUND", &context("WatchJob"));
        let wait = jobs.wait_job(authed(WaitJobRequest { id: id.clone(), timeout: None }, token)).await;
        expect_code(wait, Code::NotFound, "NOT_FOUND", &context("WaitJob"));
        let delete = jobs.delete_job(authed(DeleteJobRequest { id: id.clone() }, token)).await;
        expect_code(delete, Code::NotFound, "NOT_FOUND", &context("DeleteJob"));
    }
    let malformed = jobs.get_job(authed(GetJobRequest { id: "not-a-uuid".into() }, token)).await;
    expect_invalid(malformed, "id", "GetJob of a malformed id");

    let listed = jobs.list_jobs(authed(ListJobsRequest::default(), token)).await.expect("list").into_inner();
    assert!(listed.jobs.is_empty() && listed.total_size == 0, "a stranger lists none of the owner's jobs");
    let own = jobs.list_jobs(authed(ListJobsRequest::default(), &owner.token)).await.expect("list").into_inner();
    assert_eq!(own.jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), [job.id.as_str()]);
    let admin = stack.admin().await;
    let all = jobs.list_jobs(authed(ListJobsRequest::default(), &admin.token)).await.expect("list").into_inner();
    assert!(all.jobs.iter().any(|j| j.id == job.id), "an administrator lists everyone's jobs");
    jobs.get_job(authed(GetJobRequest { id: job.id.clone() }, &admin.token)).await.expect("an admin gets any job");
    jobs.delete_job(authed(DeleteJobRequest { id: job.id.clone() }, &owner.token)).await.expect("the owner deletes it");
}

async fn anonymous_callers_are_unauthenticated(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let mut jobs = stack.jobs();
    let id = Uuid::now_v7().to_string();
    let forged = "eyJhbGciOiJFZERTQSJ9.e30.c2lnbmF0dXJl";
    for (token, want) in [(None, "TOKEN_MISSING"), (Some(forged), "TOKEN_INVALID")] {
        let who = if token.is_some() { "a forged token" } else { "no token" };
        let created = jobs.create_job(as_caller(create(paraphrase("Hi.")), token)).await;
        expect_code(created, Code::Unauthenticated, want, &format!("CreateJob with {who}"));
        let got = jobs.get_job(as_caller(GetJobRequest { id: id.clone() }, token)).await;
        expect_code(got, Code::Unauthenticated, want, &format!("GetJob with {who}"));
        let listed = jobs.list_jobs(as_caller(ListJobsRequest::default(), token)).await;
        expect_code(listed, Code::Unauthenticated, want, &format!("ListJobs with {who}"));
        let watched = jobs.watch_job(as_caller(WatchJobRequest { id: id.clone(), after_seq: 0 }, token)).await;
        expect_code(watched.map(|_| ()), Code::Unauthenticated, want, &format!("WatchJob with {who}"));
        let cancelled = jobs.cancel_job(as_caller(CancelJobRequest { id: id.clone() }, token)).await;
        expect_code(cancelled, Code::Unauthenticated, want, &format!("CancelJob with {who}"));
    }
}

async fn bad_specs_name_the_field(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let id = Uuid::now_v7().to_string();
    let batch = |story_ids: Vec<String>| Kind::BatchAnalyze(BatchAnalyze { world_id: id.clone(), story_ids });
    let text = |text: &str, mode: &str| Kind::Paraphrase(Paraphrase { text: text.into(), mode: mode.into() });
    let cases = vec![
        BadInput { request: None, field: "spec", why: "no kind" },
        BadInput {
            request: Some(Kind::DescribeWorld(DescribeWorld { world_id: String::new() })),
            field: "spec.describe_world.world_id",
            why: "empty id",
        },
        BadInput {
            request: Some(Kind::DescribeStory(DescribeStory { story_id: "x".into() })),
            field: "spec.describe_story.story_id",
            why: "bad id",
        },
        BadInput {
            request: Some(Kind::AnalyzeStory(AnalyzeStory { story_id: "12".into() })),
            field: "spec.analyze_story.story_id",
            why: "bad id",
        },
        BadInput { request: Some(batch(vec![])), field: "spec.batch_analyze.story_ids", why: "no stories" },
        BadInput {
            request: Some(batch(vec![id.clone(); 4].into_iter().map(|_| Uuid::now_v7().to_string()).collect())),
            field: "spec.batch_analyze.story_ids",
            why: "four stories",
        },
        BadInput {
            request: Some(batch(vec![id.clone(), id.clone()])),
            field: "spec.batch_analyze.story_ids[1]",
            why: "a story twice",
        },
        BadInput {
            request: Some(batch(vec!["nope".into()])),
            field: "spec.batch_analyze.story_ids[0]",
            why: "a bad story id",
        },
        BadInput {
            request: Some(Kind::BatchAnalyze(BatchAnalyze { world_id: String::new(), story_ids: vec![id.clone()] })),
            field: "spec.batch_analyze.world_id",
            why: "no world",
        },
        BadInput {
            request: Some(Kind::ExtractEvents(ExtractEvents { target: None, force: false })),
            field: "spec.extract_events",
            why: "no target",
        },
        BadInput {
            request: Some(Kind::ExtractEvents(ExtractEvents {
                target: Some(Target::WorldId("w".into())),
                force: true,
            })),
            field: "spec.extract_events.world_id",
            why: "a bad world id",
        },
        BadInput {
            request: Some(Kind::ExtractEvents(ExtractEvents {
                target: Some(Target::StoryId(String::new())),
                force: false,
            })),
            field: "spec.extract_events.story_id",
            why: "an empty story id",
        },
        BadInput { request: Some(text("   ", "")), field: "spec.paraphrase.text", why: "blank text" },
        BadInput { request: Some(text(&"a".repeat(5_001), "")), field: "spec.paraphrase.text", why: "text too long" },
        BadInput { request: Some(text("Fine.", &"m".repeat(51))), field: "spec.paraphrase.mode", why: "mode too long" },
    ];
    let mut jobs = stack.jobs();
    for BadInput { request: kind, field, why } in cases {
        let request = CreateJobRequest {
            spec: kind.map(|kind| JobSpec { kind: Some(kind), ..JobSpec::default() }),
            request_id: String::new(),
        };
        let refused = jobs.create_job(authed(request, &user.token)).await;
        expect_invalid(refused, field, why);
    }
    let long_request_id = CreateJobRequest { request_id: "r".repeat(101), ..create(paraphrase("Fine.")) };
    expect_invalid(jobs.create_job(authed(long_request_id, &user.token)).await, "request_id", "a long request id");
    let listed = jobs.list_jobs(authed(ListJobsRequest::default(), &user.token)).await.expect("list").into_inner();
    assert!(listed.jobs.is_empty(), "no refused spec made a job");
}

async fn a_request_id_makes_create_idempotent(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let mut jobs = stack.jobs();
    let request = CreateJobRequest { request_id: "click-1".into(), ..create(paraphrase("Once only.")) };

    let first = jobs.create_job(authed(request.clone(), &user.token)).await.expect("create").into_inner();
    let again = jobs.create_job(authed(request, &user.token)).await.expect("create again").into_inner();

    assert_eq!(first.id, again.id, "the same request id returns the first job");
    let listed = jobs.list_jobs(authed(ListJobsRequest::default(), &user.token)).await.expect("list").into_inner();
    assert_eq!(listed.total_size, 1, "one job made");
}

async fn only_finished_jobs_can_be_deleted(backend: Backend) {
    let model = FakeOpenAi::start(Reply::hang()).await;
    let stack = spawn_stack_with(backend, |s| s.llm.base_url = Some(model.base_url.clone())).await;
    let user = stack.register_with_model_access("ana").await;
    let mut jobs = stack.jobs();
    let job = submit_to(&mut jobs, &user, paraphrase("Still thinking.")).await;

    let refused = jobs.delete_job(authed(DeleteJobRequest { id: job.id.clone() }, &user.token)).await;
    expect_code(refused, Code::FailedPrecondition, "JOB_NOT_FINISHED", "delete an active job");

    jobs.cancel_job(authed(CancelJobRequest { id: job.id.clone() }, &user.token)).await.expect("cancel");
    stack.wait(&user, &job.id).await;
    jobs.delete_job(authed(DeleteJobRequest { id: job.id.clone() }, &user.token)).await.expect("delete");
    let gone = jobs.get_job(authed(GetJobRequest { id: job.id.clone() }, &user.token)).await;
    expect_code(gone, Code::NotFound, "NOT_FOUND", "get a deleted job");
}

async fn a_job_writes_only_where_its_owner_could(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let owner = stack.register("ana").await;
    let reader = stack.register_with_model_access("bob").await;
    let stranger = stack.register_with_model_access("cyd").await;
    let world = stack.create_world_from(&owner, private_world("Eldoria", "Ana's own words.")).await;
    stack.share(&owner, &world.id, &reader, ShareRole::Reader).await;
    let describe = || Kind::DescribeWorld(DescribeWorld { world_id: world.id.clone() });

    let hidden = stack.run_job(&stranger, describe()).await;
    let read_only = stack.run_job(&reader, describe()).await;

    for (job, code, who) in [(&hidden, "NOT_FOUND", "a stranger"), (&read_only, "PERMISSION_DENIED", "a reader")] {
        assert_eq!(job.state(), JobState::Failed, "{who}'s job: {job:?}");
        assert_eq!(job.error.as_ref().map(|e| e.code.as_str()), Some(code), "{who}'s job: {job:?}");
        assert_eq!(job.attempts, 1, "refusals are not retried");
    }
    let request = GetWorldRequest { id: world.id.clone() };
    let stored = stack.worlds().get_world(authed(request, &owner.token)).await.expect("get").into_inner();
    assert_eq!(stored.description, "Ana's own words.", "neither job wrote anything");
}

/// A watch authorised when it opened does not outlive its user's account: disabled
/// by an administrator, the user's open watch ends UNAUTHENTICATED within seconds.
async fn an_open_watch_ends_when_its_user_is_disabled(backend: Backend) {
    use fabula_contracts::pb::accounts::{UpdateUserRequest, User};

    let model = FakeOpenAi::start(Reply::hang()).await;
    let stack = spawn_stack_with(backend, |s| s.llm.base_url = Some(model.base_url.clone())).await;
    let user = stack.register_with_model_access("ana").await;
    let job = submit_to(&mut stack.jobs(), &user, paraphrase("Never answered.")).await;
    let watch = WatchJobRequest { id: job.id.clone(), after_seq: 0 };
    let mut updates = stack.jobs().watch_job(authed(watch, &user.token)).await.expect("watch").into_inner();
    updates.message().await.expect("an update").expect("the stream is open");

    let admin = stack.admin().await;
    let request = UpdateUserRequest {
        user: Some(User { id: user.id.clone(), disabled: true, ..User::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["disabled".into()] }),
    };
    stack.accounts().update_user(authed(request, &admin.token)).await.expect("disable the user");
    let disabled_at = Instant::now();
    let ended = loop {
        match tokio::time::timeout(STATUS_TTL, updates.message()).await.expect("the watch ended in time") {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the watch ended without saying why"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    assert!(disabled_at.elapsed() < STATUS_TTL, "ended after {:?}", disabled_at.elapsed());
}
