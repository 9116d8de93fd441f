//! AI jobs through the gateway: one of each kind with the offline model, its results
//! read back from story-service through REST; a job watched as Server-Sent Events to
//! its end and resumed with `Last-Event-ID`; cancellation; and model access.
//!
//! Cancellation: the offline model answers a job in milliseconds, so a job cannot be
//! caught running, nor the single runner kept busy, deterministically with it (and
//! `--worker-runners 0` still runs one). That test points the stack at a model server
//! that accepts the request and never answers (`--llm-base-url`, one runner): the first
//! job stays RUNNING, the second QUEUED behind it, for as long as the test needs.

use std::time::{Duration, Instant};

use fabula_testkit::{
    Backend, both_databases,
    fake_model::{FakeOpenAi, Reply},
    rest::{Rest, RestUser, id_of},
};
use reqwest::{StatusCode, header::ACCEPT};
use serde_json::{Value, json};

use crate::stack;

both_databases!(
    every_kind_of_job_lands_its_results_in_story_service,
    a_job_is_watched_to_its_end_and_resumed_losing_nothing,
    queued_and_running_jobs_are_cancelled,
    jobs_need_model_access_and_act_only_as_their_owner,
);

/// A story the offline model finds four characters, three places and two dated events in.
pub const CROSSING: &str = "In 1204 Mira Vale sailed from Port Sorrow to the Silver Lake. She met Old Tomas there. \
    Then the Age of Embers began in 1210, and Tomas fled to Kestrel Keep! Mira stayed.";
/// A story that names one character of [`CROSSING`], one new character and a new place.
const MINING: &str = "Borin dug beneath Ironhold in 1190. Mira Vale found him there, deep in Ironhold.";

/// Submits a job of `spec` as `user`; returns its id once the gateway accepted it.
async fn submit(user: &RestUser, spec: Value) -> String {
    let created = user.api.post("/v1/jobs", spec).await;
    let location = created.headers.get("location").and_then(|l| l.to_str().ok()).map(str::to_owned);
    let job = created.expect(StatusCode::ACCEPTED, "create a job");
    assert_eq!(job["state"], "QUEUED", "a job is queued at once: {job}");
    let id = id_of(&job);
    assert_eq!(location, Some(format!("/v1/jobs/{id}")), "the Location of the job");
    id
}

/// The job `id` once finished.
async fn wait(user: &RestUser, id: &str) -> Value {
    let job = user.api.get(&format!("/v1/jobs/{id}/wait?timeout=30s")).await.expect(StatusCode::OK, "wait");
    assert!(["SUCCEEDED", "FAILED", "CANCELLED"].contains(&job["state"].as_str().unwrap_or_default()), "{job}");
    job
}

/// Runs a job of `spec` to success with the offline model and returns its result.
async fn run(user: &RestUser, spec: Value) -> Value {
    let id = submit(user, spec).await;
    let job = wait(user, &id).await;
    assert_eq!((&job["state"], &job["attempts"]), (&json!("SUCCEEDED"), &json!(1)), "{job}");
    assert_eq!(job["result"]["model"], "offline", "{job}");
    job["result"].clone()
}

async fn get(user: &RestUser, path: &str) -> Value {
    user.api.get(path).await.expect(StatusCode::OK, path)
}

/// `items` sorted, for comparisons that ignore order.
fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}

/// The strings of a JSON list, sorted; none when it is absent, as empty lists are.
fn strings(list: &Value) -> Vec<String> {
    sorted(list.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect())
}

/// The ids of every item of `list`, sorted.
fn all_ids(list: &Value) -> Vec<String> {
    sorted(list.as_array().into_iter().flatten().map(id_of).collect())
}

/// The names of the items of `list`, sorted.
fn names(list: &Value) -> Vec<String> {
    sorted(list.as_array().into_iter().flatten().filter_map(|i| i["name"].as_str().map(str::to_owned)).collect())
}

/// The ids of the items of `list` with `names`, sorted.
fn ids_named(list: &Value, names: &[&str]) -> Vec<String> {
    let items = list.as_array().expect("a list");
    let named = |name: &&str| items.iter().find(|i| i["name"] == *name).unwrap_or_else(|| panic!("{name} in {list}"));
    sorted(names.iter().map(|name| id_of(named(name))).collect())
}

/// A user with model access, a world and the [`CROSSING`] story in it.
async fn writer_with_a_story(api: &Rest) -> (RestUser, String, String) {
    let ada = api.register_with_model_access("ada").await;
    let world = json!({"name": "Eldoria", "description": "A land of rivers and salt."});
    let world_id = id_of(&ada.api.post("/v1/worlds", world).await.expect(StatusCode::CREATED, "world"));
    let story = json!({"title": "The Crossing", "content": CROSSING});
    let story = ada.api.post(&format!("/v1/worlds/{world_id}/stories"), story).await;
    (ada, world_id, id_of(&story.expect(StatusCode::CREATED, "story")))
}

async fn every_kind_of_job_lands_its_results_in_story_service(backend: Backend) {
    let running = stack::start(backend).await;
    let (ada, world_id, crossing) = writer_with_a_story(&running.rest()).await;

    analyze_story_creates_and_links_what_it_finds(&ada, &world_id, &crossing).await;
    extract_events_makes_events_of_the_dated_sentences(&ada, &world_id, &crossing).await;
    describe_story_writes_the_summary(&ada, &crossing).await;
    describe_world_writes_the_description(&ada, &world_id).await;
    batch_analyze_reuses_what_exists(&ada, &world_id, &crossing).await;
    paraphrase_writes_nothing(&ada, &world_id).await;
    running.stop().await;
}

/// The entities and the locations of a world.
async fn world_contents(user: &RestUser, world_id: &str) -> (Value, Value) {
    let entities = get(user, &format!("/v1/worlds/{world_id}/entities")).await["entities"].clone();
    let locations = get(user, &format!("/v1/worlds/{world_id}/locations")).await["locations"].clone();
    (entities, locations)
}

/// By default a job proposes: nothing is written until the author accepts.
async fn analyze_story_creates_and_links_what_it_finds(ada: &RestUser, world_id: &str, crossing: &str) {
    let result = run(ada, json!({"analyzeStory": {"storyId": crossing}})).await;
    let proposal_id = result["proposalId"].as_str().expect("the job names its proposal").to_owned();
    let (entities, locations) = world_contents(ada, world_id).await;
    assert!(names(&entities).is_empty() && names(&locations).is_empty(), "nothing written yet");
    let proposal = get(ada, &format!("/v1/proposals/{proposal_id}")).await;
    assert_eq!(proposal["state"], "PROPOSAL_OPEN", "{proposal}");

    let accepted = ada.api.post(&format!("/v1/proposals/{proposal_id}/accept"), json!({})).await;
    let accepted = accepted.expect(StatusCode::OK, "accept the proposal");

    assert_eq!(accepted["state"], "PROPOSAL_ACCEPTED", "{accepted}");
    let (entities, locations) = world_contents(ada, world_id).await;
    assert_eq!(names(&entities), ["Mira", "Mira Vale", "Old Tomas", "Tomas"], "{entities}");
    assert_eq!(names(&locations), ["Kestrel Keep", "Port Sorrow", "Silver Lake"], "{locations}");
    assert!(entities.as_array().into_iter().flatten().all(|e| e["entityType"] == "character"), "{entities}");
    assert_eq!(result["analyses"]["stories"][0]["storyId"], crossing);
    let created = |kind: &str| -> Vec<String> {
        let changes = accepted["changes"].as_array().into_iter().flatten();
        let mut ids: Vec<String> = changes.filter_map(|c| c[kind]["id"].as_str().map(str::to_owned)).collect();
        ids.sort();
        ids
    };
    assert_eq!(created("createEntity"), all_ids(&entities), "{accepted}");
    assert_eq!(created("createLocation"), all_ids(&locations), "{accepted}");
    let story = get(ada, &format!("/v1/stories/{crossing}")).await;
    assert_eq!(strings(&story["entityIds"]), all_ids(&entities), "every entity is linked to the story");
    assert_eq!(strings(&story["locationIds"]), all_ids(&locations), "every place is linked to the story");
}

async fn extract_events_makes_events_of_the_dated_sentences(ada: &RestUser, world_id: &str, crossing: &str) {
    let result = run(ada, json!({"extractEvents": {"storyId": crossing}, "apply": "AUTO"})).await;

    let events = get(ada, &format!("/v1/worlds/{world_id}/events")).await["events"].clone();
    assert_eq!(strings(&result["events"]["createdEventIds"]), all_ids(&events), "{events}");
    let timeline = get(ada, &format!("/v1/worlds/{world_id}/timeline")).await;
    let eras: Vec<(&Value, usize)> = timeline["eras"]
        .as_array()
        .expect("eras")
        .iter()
        .map(|era| (&era["era"], era["events"].as_array().map_or(0, Vec::len)))
        .collect();
    assert_eq!(eras, [(&json!("Unnamed Era"), 1), (&json!("Age of Embers"), 1)], "{timeline}");
    let [first, second] = [&timeline["eras"][0]["events"][0], &timeline["eras"][1]["events"][0]];
    let title = json!("In 1204 Mira Vale sailed from Port Sorrow");
    assert_eq!((&first["title"], &first["year"], &first["storyId"]), (&title, &json!("1204"), &json!(crossing)));
    assert_eq!((&second["year"], &second["storyId"]), (&json!("1210"), &json!(crossing)), "{second}");
    let (entities, locations) = world_contents(ada, world_id).await;
    assert_eq!(strings(&first["entityIds"]), ids_named(&entities, &["Mira", "Mira Vale"]), "{first}");
    assert_eq!(strings(&first["locationIds"]), ids_named(&locations, &["Port Sorrow", "Silver Lake"]), "{first}");
    assert_eq!(strings(&second["entityIds"]), ids_named(&entities, &["Tomas"]), "{second}");
    assert_eq!(strings(&second["locationIds"]), ids_named(&locations, &["Kestrel Keep"]), "{second}");
}

async fn describe_story_writes_the_summary(ada: &RestUser, crossing: &str) {
    let result = run(ada, json!({"describeStory": {"storyId": crossing}, "apply": "AUTO"})).await;

    let summary = "[offline] This story description was written by Fabula's offline model; no language model was used.\
        \n\nIt opens: \"In 1204 Mira Vale sailed from Port Sorrow to the Silver Lake. She met Old Tomas there.\" \
        It features Mira Vale, Old Tomas, Tomas and Mira. Places named include Port Sorrow, Silver Lake and \
        Kestrel Keep. It runs to 33 words in 4 sentences.";
    assert_eq!((&result["description"]["text"], &result["description"]["applied"]), (&json!(summary), &json!(true)));
    let story = get(ada, &format!("/v1/stories/{crossing}")).await;
    assert_eq!((&story["summary"], &story["content"]), (&json!(summary), &json!(CROSSING)), "the summary is set");
}

async fn describe_world_writes_the_description(ada: &RestUser, world_id: &str) {
    let result = run(ada, json!({"describeWorld": {"worldId": world_id}, "apply": "AUTO"})).await;

    let text = result["description"]["text"].as_str().expect("a description");
    assert!(text.starts_with("[offline] This world description was written by Fabula's offline model"), "{text}");
    assert!(text.contains("\n\nEldoria: A land of rivers and salt. Its characters and things include"), "{text}");
    assert!(text.ends_with(" Its timeline holds 2 events."), "the events extracted before: {text}");
    assert_eq!(result["description"]["applied"], true);
    assert_eq!(get(ada, &format!("/v1/worlds/{world_id}")).await["description"], text, "the description is set");
}

async fn batch_analyze_reuses_what_exists(ada: &RestUser, world_id: &str, crossing: &str) {
    let mining = json!({"title": "Deep Roads", "content": MINING});
    let mining = ada.api.post(&format!("/v1/worlds/{world_id}/stories"), mining).await;
    let mining = id_of(&mining.expect(StatusCode::CREATED, "story"));

    let result =
        run(ada, json!({"batchAnalyze": {"worldId": world_id, "storyIds": [crossing, mining]}, "apply": "AUTO"})).await;

    let analyses = result["analyses"]["stories"].as_array().expect("analyses");
    assert_eq!((&analyses[0]["storyId"], &analyses[1]["storyId"]), (&json!(crossing), &json!(mining)), "in order");
    assert!(analyses[0].get("createdEntityIds").is_none(), "nothing new in the first: {}", analyses[0]);
    let (entities, locations) = world_contents(ada, world_id).await;
    assert_eq!(names(&entities), ["Borin", "Mira", "Mira Vale", "Old Tomas", "Tomas"], "no duplicate: {entities}");
    assert_eq!(strings(&analyses[1]["createdEntityIds"]), ids_named(&entities, &["Borin"]));
    assert_eq!(strings(&analyses[1]["createdLocationIds"]), ids_named(&locations, &["Ironhold"]));
    let story = get(ada, &format!("/v1/stories/{mining}")).await;
    assert_eq!(strings(&story["entityIds"]), ids_named(&entities, &["Borin", "Mira Vale"]), "linked: {story}");
    assert_eq!(strings(&story["locationIds"]), ids_named(&locations, &["Ironhold"]), "linked: {story}");
}

async fn paraphrase_writes_nothing(ada: &RestUser, world_id: &str) {
    let before = get(ada, &format!("/v1/worlds/{world_id}/entities")).await;

    let result = run(ada, json!({"paraphrase": {"text": "The old man said hello.", "mode": "formal"}})).await;

    let suggestions = [
        "[offline] It may be stated that: The ancient man remarked hello.",
        "[offline] In formal terms: The old man said hello.",
        "[offline] Expressed formally: The old man said hello.",
    ];
    assert_eq!(result["suggestions"]["suggestions"], json!(suggestions));
    assert_eq!(get(ada, &format!("/v1/worlds/{world_id}/entities")).await, before, "nothing was written");
}

/// One Server-Sent Event.
#[derive(Debug, PartialEq)]
struct Event {
    id: Option<String>,
    event: String,
    data: Value,
}

/// Reads the SSE stream of `request`, `limit` events at most (then hangs up).
async fn watch(request: reqwest::RequestBuilder, limit: usize) -> Vec<Event> {
    let mut response = request.header(ACCEPT, "text/event-stream").send().await.expect("the gateway answers");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap_or_default().to_owned();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let (mut buffer, mut events) = (String::new(), Vec::new());
    while events.len() < limit {
        let Some(chunk) = response.chunk().await.expect("the stream reads") else { break };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            events.extend(parse_event(&block));
        }
    }
    events.truncate(limit);
    events
}

/// The event of one SSE block; `None` for a comment (a heartbeat).
fn parse_event(block: &str) -> Option<Event> {
    let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim_start().to_owned());
    let data = field("data:")?;
    let data = serde_json::from_str(&data).unwrap_or_else(|e| panic!("JSON data ({e}): {block}"));
    Some(Event { id: field("id:"), event: field("event:").unwrap_or_default(), data })
}

async fn a_job_is_watched_to_its_end_and_resumed_losing_nothing(backend: Backend) {
    let running = stack::start(backend).await;
    let api = running.rest();
    let ada = api.register_with_model_access("ada").await;
    let text = "The sea was wide and the night was long. The old keeper walked the shore. ".repeat(4);
    let id = submit(&ada, json!({"paraphrase": {"text": text}})).await;
    let path = format!("/v1/jobs/{id}/watch");

    let all = watch(ada.api.request(reqwest::Method::GET, &path), usize::MAX).await;

    for (n, event) in all.iter().enumerate() {
        assert_eq!(event.event, "update", "{event:?}");
        assert_eq!(event.id, Some((n + 1).to_string()), "ids count up from one: {all:#?}");
        assert_eq!(event.data["seq"], (n + 1).to_string(), "the id is the update's seq");
    }
    let last = &all.last().expect("updates").data;
    assert_eq!(last["finished"]["state"], "SUCCEEDED", "the stream ends with the finished job: {last}");
    let streamed: String = all.iter().filter_map(|e| e.data["outputDelta"].as_str()).collect();
    assert_eq!(streamed, last["finished"]["output"].as_str().expect("output"), "the deltas make the output");
    let states: Vec<&Value> = all.iter().filter_map(|e| e.data.get("state")).collect();
    assert_eq!(states, [&json!("RUNNING"), &json!("SUCCEEDED")], "one attempt: {all:#?}");

    // Hung up after three events, a client reconnects with the last id it saw.
    let head = watch(ada.api.request(reqwest::Method::GET, &path), 3).await;
    let seen = head.last().and_then(|e| e.id.clone()).expect("an id");
    let tail = watch(ada.api.request(reqwest::Method::GET, &path).header("last-event-id", seen), usize::MAX).await;
    assert_eq!(head.into_iter().chain(tail).collect::<Vec<_>>(), all, "nothing lost, nothing twice");
    running.stop().await;
}

async fn queued_and_running_jobs_are_cancelled(backend: Backend) {
    let mut model = FakeOpenAi::start(Reply::hang()).await;
    let running = stack::start_with(backend, &["--llm-base-url", &model.base_url, "--worker-runners", "1"]).await;
    let (ada, world_id, _) = writer_with_a_story(&running.rest()).await;
    let world = get(&ada, &format!("/v1/worlds/{world_id}")).await;
    let busy = submit(&ada, json!({"describeWorld": {"worldId": world_id}})).await;
    model.request_within(Duration::from_secs(10)).await;
    assert_eq!(get(&ada, &format!("/v1/jobs/{busy}")).await["state"], "RUNNING");
    let queued = submit(&ada, json!({"paraphrase": {"text": "Waiting for the only runner."}})).await;

    let cancelled = ada.api.post(&format!("/v1/jobs/{queued}/cancel"), json!({})).await;
    let cancelled = cancelled.expect(StatusCode::OK, "cancel the queued job");
    assert_eq!(cancelled["state"], "CANCELLED", "a queued job is cancelled at once: {cancelled}");
    assert!(cancelled.get("startTime").is_none() && cancelled.get("attempts").is_none(), "it never ran: {cancelled}");

    let started = Instant::now();
    ada.api.post(&format!("/v1/jobs/{busy}/cancel"), json!({})).await.expect(StatusCode::OK, "cancel the running job");
    let job = wait(&ada, &busy).await;
    // The contract says within a second; a loaded two-core machine gets some leeway.
    assert!(started.elapsed() < Duration::from_secs(2), "cancelled in {:?}", started.elapsed());
    assert_eq!(job["state"], "CANCELLED", "{job}");
    assert!(job.get("result").is_none() && job.get("error").is_none(), "no result, no error: {job}");
    let aborted = tokio::time::timeout(Duration::from_secs(2), model.connection_closed()).await;
    aborted.expect("the model request is aborted");
    assert_eq!(get(&ada, &format!("/v1/worlds/{world_id}")).await, world, "nothing was written");
    let again = ada.api.post(&format!("/v1/jobs/{busy}/cancel"), json!({})).await.expect(StatusCode::OK, "again");
    assert_eq!(again, job, "cancelling a finished job changes nothing");
    running.stop().await;
}

async fn jobs_need_model_access_and_act_only_as_their_owner(backend: Backend) {
    let running = stack::start(backend).await;
    let api = running.rest();
    let (ada, _, crossing) = writer_with_a_story(&api).await;
    let bob = api.register("bob").await;
    let spec = json!({"describeStory": {"storyId": crossing}});

    let refused = bob.api.post("/v1/jobs", spec.clone()).await;
    refused.expect_error(StatusCode::FORBIDDEN, "PERMISSION_DENIED", "MODEL_ACCESS_REQUIRED", "no model access");
    let anonymous = api.post("/v1/jobs", spec.clone()).await;
    anonymous.expect_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "TOKEN_MISSING", "no token");

    // With model access (seen once the worker's one-second status cache expires), a
    // job still reads and writes only what its owner may.
    api.grant_model_access(&bob).await;
    let granted = Instant::now();
    while bob.api.post("/v1/jobs", json!({"paraphrase": {"text": "Hello."}})).await.status != StatusCode::ACCEPTED {
        assert!(granted.elapsed() < Duration::from_secs(3), "model access takes effect within a second or so");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = submit(&bob, spec).await;
    let job = wait(&bob, &id).await;
    assert_eq!((&job["state"], &job["error"]["code"]), (&json!("FAILED"), &json!("NOT_FOUND")), "{job}");
    let story = get(&ada, &format!("/v1/stories/{crossing}")).await;
    assert!(story.get("summary").is_none(), "another user's job wrote nothing: {story}");
    let hidden = ada.api.get(&format!("/v1/jobs/{id}")).await;
    hidden.expect_error(StatusCode::NOT_FOUND, "NOT_FOUND", "NOT_FOUND", "another user's job");
    let listed = ada.api.get("/v1/jobs").await.expect(StatusCode::OK, "list jobs");
    assert!(listed.get("jobs").is_none(), "ada has no jobs: {listed}");
    running.stop().await;
}
