//! Jobs run by the real OpenAI-compatible provider against a fake server on loopback:
//! streamed deltas in the job's output, retries of transient failures (429 with
//! Retry-After, 500, a hang), permanent failures at once, and output that stays invalid
//! (told in detail to the model, and to the job's owner without the model's words).

use crate::common;

use std::time::{Duration, Instant};

use common::{Backend, Stack, authed, both_databases, paraphrase, private_story, private_world, spawn_stack_with};
use fabula_contracts::pb::{
    jobs::{AnalyzeStory, DescribeWorld, Job, JobState, WatchJobRequest, job_result, job_spec::Kind, job_update},
    story::GetWorldRequest,
};
use fabula_runtime::config::Secret;
use fabula_testkit::fake_model::{FakeOpenAi, Reply, content_chunk};

both_databases!(
    streamed_deltas_land_in_the_job_output,
    a_rate_limit_is_retried_after_its_retry_after,
    a_server_error_is_retried,
    a_hung_request_times_out_and_is_retried,
    transient_failures_fail_after_the_last_attempt,
    a_refused_request_fails_at_once_with_a_clean_error,
    output_that_stays_invalid_fails_the_job,
    the_owner_is_told_what_was_invalid_without_the_models_words,
    nul_characters_from_the_model_are_dropped,
);

const API_KEY: &str = "sk-test-do-not-leak";
const SUGGESTIONS: &str = r#"{"suggestions": ["One way.", "Another way.", "A third way."]}"#;
const UPSTREAM_ERROR: &str = r#"{"error": {"message": "upstream secret text", "code": "invalid_request"}}"#;

/// A stack whose worker's model is the fake server, which it gives up on after `timeout`.
async fn stack_on(backend: Backend, model: &FakeOpenAi, timeout: Duration) -> Stack {
    let base_url = model.base_url.clone();
    spawn_stack_with(backend, |s| {
        s.llm.base_url = Some(base_url);
        s.llm.api_key = Some(Secret::new(API_KEY));
        s.llm.request_timeout = timeout;
    })
    .await
}

/// Runs a Paraphrase job on `stack` to its end.
async fn run_paraphrase(stack: &Stack) -> Job {
    let user = stack.register_with_model_access("ana").await;
    stack.run_job(&user, paraphrase("The old man said hello to the sea.")).await
}

fn assert_succeeded_in(job: &Job, attempts: i32) {
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    assert_eq!(job.attempts, attempts, "attempts: {job:?}");
    assert!(job.error.is_none(), "a succeeded job has no error: {job:?}");
    let Some(job_result::Kind::Suggestions(result)) = job.result.as_ref().and_then(|r| r.kind.clone()) else {
        panic!("suggestions: {job:?}")
    };
    assert_eq!(result.suggestions, ["One way.", "Another way.", "A third way."]);
    assert_eq!(job.output, SUGGESTIONS, "the output is the last attempt's text only");
}

async fn streamed_deltas_land_in_the_job_output(backend: Backend) {
    let pieces = [r#"{"suggestions": ["One way.", "#, r#""Another way.", "#, r#""A third way."]}"#];
    let slow = Duration::from_millis(250);
    let reply =
        pieces.iter().fold(Reply::event_stream(), |reply, piece| reply.event(&content_chunk(piece)).pause(slow));
    let mut model = FakeOpenAi::start(reply.done()).await;
    let stack = stack_on(backend, &model, Duration::from_secs(10)).await;
    let user = stack.register_with_model_access("ana").await;
    let job = stack.submit(&user, paraphrase("The old man said hello to the sea.")).await;

    let request = WatchJobRequest { id: job.id.clone(), after_seq: 0 };
    let mut watch = stack.jobs().watch_job(authed(request, &user.token)).await.expect("watch").into_inner();
    let mut deltas = Vec::new();
    while let Some(update) = watch.message().await.expect("the watch goes on") {
        if let Some(job_update::Kind::OutputDelta(delta)) = update.kind {
            deltas.push(delta);
        }
    }

    assert_eq!(deltas.concat(), SUGGESTIONS, "the deltas add up to the answer");
    assert!(deltas.len() >= 2, "the output arrived as the model wrote it, not at the end: {deltas:?}");
    let finished = stack.wait(&user, &job.id).await;
    assert_succeeded_in(&finished, 1);
    assert_eq!(finished.result.as_ref().map(|r| r.model.as_str()), Some("gpt-4o-mini"), "the configured model");
    let sent = model.request().await;
    assert_eq!(sent.headers.get("authorization").map(String::as_str), Some("Bearer sk-test-do-not-leak"));
    assert_eq!(sent.body["stream"], true);
    let messages = sent.body["messages"].as_array().expect("messages");
    assert_eq!(messages.last().expect("a message")["content"], "The old man said hello to the sea.");
}

async fn a_rate_limit_is_retried_after_its_retry_after(backend: Backend) {
    let limited = Reply::status(429, &[("retry-after", "1")], r#"{"error": {"code": "rate_limit_exceeded"}}"#);
    let model = FakeOpenAi::start_script(vec![limited, Reply::streaming(&[SUGGESTIONS])]).await;
    let stack = stack_on(backend, &model, Duration::from_secs(10)).await;

    let started = Instant::now();
    let job = run_paraphrase(&stack).await;

    assert_succeeded_in(&job, 2);
    assert!(started.elapsed() >= Duration::from_secs(1), "the retry waited for Retry-After");
}

async fn a_server_error_is_retried(backend: Backend) {
    let failing = Reply::status(500, &[], UPSTREAM_ERROR);
    let model = FakeOpenAi::start_script(vec![failing, Reply::streaming(&[SUGGESTIONS])]).await;
    let stack = stack_on(backend, &model, Duration::from_secs(10)).await;

    assert_succeeded_in(&run_paraphrase(&stack).await, 2);
}

async fn a_hung_request_times_out_and_is_retried(backend: Backend) {
    let mut model = FakeOpenAi::start_script(vec![Reply::hang(), Reply::streaming(&[SUGGESTIONS])]).await;
    let stack = stack_on(backend, &model, Duration::from_millis(500)).await;

    assert_succeeded_in(&run_paraphrase(&stack).await, 2);
    tokio::time::timeout(Duration::from_secs(1), model.connection_closed())
        .await
        .expect("the timed-out request's connection was closed");
}

async fn transient_failures_fail_after_the_last_attempt(backend: Backend) {
    let model = FakeOpenAi::start(Reply::status(503, &[], UPSTREAM_ERROR)).await;
    let stack = stack_on(backend, &model, Duration::from_secs(10)).await;

    let job = run_paraphrase(&stack).await;

    assert_eq!(job.state(), JobState::Failed, "{job:?}");
    assert_eq!(job.attempts, 3, "every attempt was made");
    let error = job.error.expect("an error");
    assert_eq!(error.code, "MODEL_UNAVAILABLE", "{error:?}");
    assert!(!error.message.contains("upstream secret text"), "no upstream text: {error:?}");
}

async fn a_refused_request_fails_at_once_with_a_clean_error(backend: Backend) {
    let mut model = FakeOpenAi::start(Reply::status(400, &[], UPSTREAM_ERROR)).await;
    let stack = stack_on(backend, &model, Duration::from_secs(10)).await;

    let job = run_paraphrase(&stack).await;

    assert_eq!(job.state(), JobState::Failed, "{job:?}");
    assert_eq!(job.attempts, 1, "a permanent failure is not retried");
    let error = job.error.expect("an error");
    assert_eq!(error.code, "MODEL_ERROR", "{error:?}");
    assert!(error.message.contains("HTTP 400"), "the error says what happened: {error:?}");
    for leak in ["upstream secret text", API_KEY] {
        assert!(!error.message.contains(leak), "{error:?} leaks {leak:?}");
    }
    model.request().await;
    assert_eq!(model.unread_requests(), 0, "one request only");
}

async fn output_that_stays_invalid_fails_the_job(backend: Backend) {
    let mut model = FakeOpenAi::start(Reply::streaming(&["Sure! Here ", "are some ideas."])).await;
    let stack = stack_on(backend, &model, Duration::from_secs(10)).await;

    let job = run_paraphrase(&stack).await;

    assert_eq!(job.state(), JobState::Failed, "{job:?}");
    assert_eq!(job.attempts, 1, "invalid output is not retried");
    assert_eq!(job.error.as_ref().map(|e| e.code.as_str()), Some("INVALID_MODEL_OUTPUT"), "{job:?}");
    let first = model.request().await;
    let repair = model.request().await;
    let turns = |body: &serde_json::Value| body["messages"].as_array().map_or(0, Vec::len);
    assert_eq!(turns(&repair.body), turns(&first.body) + 2, "the repair adds the answer and the complaint");
    assert_eq!(model.unread_requests(), 0, "one repair attempt only");
}

async fn the_owner_is_told_what_was_invalid_without_the_models_words(backend: Backend) {
    // serde_json quotes the string it found where a list belongs.
    let mut model = FakeOpenAi::start(Reply::streaming(&[r#"{"entities": "Mira Vale, the secret heir"}"#])).await;
    let stack = stack_on(backend, &model, Duration::from_secs(10)).await;
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world_from(&user, private_world("Eldoria", "A land of rivers.")).await;
    let story = stack.create_story_from(&user, &world.id, private_story("The Crossing", "Mira Vale sailed.")).await;

    let job = stack.run_job(&user, Kind::AnalyzeStory(AnalyzeStory { story_id: story.id.clone() })).await;

    assert_eq!(job.state(), JobState::Failed, "{job:?}");
    let error = job.error.expect("an error");
    assert_eq!(error.code, "INVALID_MODEL_OUTPUT", "{error:?}");
    assert!(error.message.contains("`entities` and `locations`"), "the error says what was expected: {error:?}");
    assert!(!error.message.contains("secret heir"), "the error quotes the model: {error:?}");
    model.request().await;
    let repair = model.request().await;
    let complaint = repair.body["messages"].as_array().and_then(|m| m.last()).expect("a message")["content"].clone();
    assert!(complaint.as_str().is_some_and(|c| c.contains("secret heir")), "the model hears the detail: {complaint}");
}

async fn nul_characters_from_the_model_are_dropped(backend: Backend) {
    // PostgreSQL cannot store NUL in text, nor story-service accept it.
    let with_nuls = r#"{"suggestions": ["One\u0000 way.", "Another way.", "A third way."]}\u0000"#;
    let reply = Reply::event_stream().event(&content_chunk("\u{0}")).event(&content_chunk(with_nuls)).done();
    let model = FakeOpenAi::start(reply).await;
    let stack = stack_on(backend, &model, Duration::from_secs(10)).await;
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world_from(&user, private_world("Eldoria", "By hand.")).await;

    let job = stack.run_job(&user, paraphrase("The old man said hello to the sea.")).await;
    let described = stack.run_job(&user, Kind::DescribeWorld(DescribeWorld { world_id: world.id.clone() })).await;

    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    assert!(!job.output.contains('\0'), "{:?}", job.output);
    let Some(job_result::Kind::Suggestions(result)) = job.result.and_then(|r| r.kind) else { panic!("suggestions") };
    assert_eq!(result.suggestions, ["One way.", "Another way.", "A third way."]);
    assert_eq!(described.state(), JobState::Succeeded, "{described:?}");
    let request = GetWorldRequest { id: world.id.clone() };
    let stored = stack.worlds().get_world(authed(request, &user.token)).await.expect("get").into_inner();
    assert!(!stored.description.is_empty() && !stored.description.contains('\0'), "{:?}", stored.description);
}
