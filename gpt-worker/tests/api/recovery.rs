//! Crash recovery: a worker that dies mid-job still holding its lease loses nothing.
//! Once the lease expires another worker takes the job over and completes it, and
//! what the dead worker had written already is not written twice: the survivor reuses
//! the model's answers the dead worker saved, even where the model would now answer
//! otherwise. A stale run of a job (its lease expired and the job was claimed again)
//! writes nothing.

use crate::common;

use std::{sync::Arc, time::Duration};

use common::{
    Backend, CrashableWorker, Stack, TestUser, authed, both_databases, paraphrase, private_story, private_world,
    spawn_services, submit_to, wait_for,
};
use fabula_contracts::pb::{
    jobs::{
        BatchAnalyze, ExtractEvents, Job, JobSpec, JobState, extract_events::Target, job_result, job_spec::Kind,
        job_update,
    },
    story::{GetStoryRequest, ListEntitiesRequest, ListEventsRequest, ListLocationsRequest, Story},
};
use fabula_store::Db;
use fabula_testkit::fake_model::{FakeOpenAi, Reply, content_chunk};
use gpt_worker::{
    queue::{self, Claimed},
    recorder::Recorder,
    store,
    writer::Writer,
};
use sqlx::Row;
use tokio::sync::broadcast;
use uuid::Uuid;

both_databases!(
    a_job_whose_worker_died_is_completed_by_another_without_duplicates,
    a_job_taken_over_reuses_the_answers_its_dead_worker_saved,
    an_extraction_taken_over_keeps_the_events_its_dead_worker_made,
    a_stale_run_of_a_job_writes_nothing,
    a_deleted_job_takes_its_saved_answers_along,
    a_job_taken_over_starts_its_output_over,
);

const ANALYSIS: &str = r#"{"entities": [
    {"name": "Mira Vale", "entity_type": "character", "description": "A sailor."},
    {"name": "Hale", "entity_type": "character", "description": "A captain."}],
  "locations": [{"name": "Port Sorrow", "description": "A harbour town."}]}"#;
/// What the model says of the second story; asked about the first again, it says this too.
const OTHER_ANALYSIS: &str = r#"{"entities": [
    {"name": "Corin Ash", "entity_type": "character", "description": "A stranger."}],
  "locations": [{"name": "Greyhaven", "description": "A grey port."}]}"#;
const EVENTS: &str = r#"{"events": [
    {"title": "The crossing begins", "year": 1, "story_position": 1},
    {"title": "A storm at sea", "year": 1, "story_position": 2}]}"#;
/// What the model says of the second story's events; asked about the first again, it says this too.
const OTHER_EVENTS: &str = r#"{"events": [{"title": "A homecoming", "year": 2, "story_position": 1}]}"#;
/// Short enough that the job is taken over quickly once its worker is gone.
const LEASE: Duration = Duration::from_millis(1_500);

/// Settings for workers on the fake model with a short lease.
fn on_model(model: &FakeOpenAi) -> impl FnOnce(&mut gpt_worker::Settings) + Clone + use<> {
    let base_url = model.base_url.clone();
    move |s| {
        s.llm.base_url = Some(base_url);
        s.queue.lease = LEASE;
    }
}

async fn names(stack: &Stack, user: &TestUser, world_id: &str) -> (Vec<String>, Vec<String>) {
    let request = ListEntitiesRequest { world_id: world_id.into(), page_size: 100, ..Default::default() };
    let entities = stack.entities().list_entities(authed(request, &user.token)).await.expect("list").into_inner();
    let request = ListLocationsRequest { world_id: world_id.into(), page_size: 100, ..Default::default() };
    let locations = stack.locations().list_locations(authed(request, &user.token)).await.expect("list").into_inner();
    let mut entities: Vec<String> = entities.entities.into_iter().map(|e| e.name).collect();
    let mut locations: Vec<String> = locations.locations.into_iter().map(|l| l.name).collect();
    entities.sort();
    locations.sort();
    (entities, locations)
}

async fn a_job_whose_worker_died_is_completed_by_another_without_duplicates(backend: Backend) {
    // The first story's analysis is answered; the second's hangs until its worker dies.
    let answer = || Reply::streaming(&[ANALYSIS]);
    let mut model = FakeOpenAi::start_script(vec![answer(), Reply::hang(), answer()]).await;
    let stack = spawn_services(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world_from(&user, private_world("Eldoria", "A land of rivers.")).await;
    let first =
        stack.create_story_from(&user, &world.id, private_story("The Crossing", "Mira Vale sailed with Hale.")).await;
    let second = stack
        .create_story_from(&user, &world.id, private_story("The Return", "Mira Vale came home to Port Sorrow."))
        .await;
    let doomed = stack.spawn_crashable_worker(on_model(&model)).await;
    let spec = BatchAnalyze { world_id: world.id.clone(), story_ids: vec![first.id.clone(), second.id.clone()] };
    let job = submit_to(&mut doomed.jobs(), &user, Kind::BatchAnalyze(spec)).await;
    for _ in 0..2 {
        model.request_within(common::JOB_TIMEOUT).await;
    }
    let written_before = names(&stack, &user, &world.id).await;
    assert!(written_before.0.is_empty(), "a job writes nothing before its one proposal, at its end");

    let finished = take_over(&stack, &model, doomed, &user, &job.id).await;

    assert_eq!(finished.state(), JobState::Succeeded, "{finished:?}");
    assert_eq!(finished.attempts, 2, "the dead worker's attempt and the survivor's");
    let (entities, locations) = names(&stack, &user, &world.id).await;
    assert_eq!(
        (entities.as_slice(), locations.len()),
        (&["Hale".to_owned(), "Mira Vale".to_owned()][..], 1),
        "no entity or place made twice"
    );
    let Some(job_result::Kind::Analyses(result)) = finished.result.and_then(|r| r.kind) else {
        panic!("an analysis result")
    };
    assert_eq!(result.stories.len(), 2);
    for written in [&first, &second] {
        let linked = story(&stack, &user, &written.id).await;
        assert_eq!(linked.entity_ids.len(), 2, "{} links both characters once: {linked:?}", written.title);
        assert_eq!(linked.location_ids.len(), 1, "{} links the harbour once: {linked:?}", written.title);
    }
}

/// Kills `doomed`, starts another worker on `model`, and waits for it to finish job
/// `id` once the dead worker's lease has expired.
async fn take_over(stack: &Stack, model: &FakeOpenAi, doomed: CrashableWorker, user: &TestUser, id: &str) -> Job {
    doomed.kill();
    let survivor = stack.start_worker(on_model(model)).await;
    wait_for(&mut survivor.jobs(), user, id).await
}

/// Story `id` as `user` reads it.
async fn story(stack: &Stack, user: &TestUser, id: &str) -> Story {
    let request = GetStoryRequest { id: id.into() };
    stack.stories().get_story(authed(request, &user.token)).await.expect("get").into_inner()
}

async fn a_job_taken_over_reuses_the_answers_its_dead_worker_saved(backend: Backend) {
    // The first story is answered; the second hangs until its worker dies. Asked
    // anything after that, the model gives another answer.
    let script = vec![Reply::streaming(&[ANALYSIS]), Reply::hang(), Reply::streaming(&[OTHER_ANALYSIS])];
    let mut model = FakeOpenAi::start_script(script).await;
    let stack = spawn_services(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world_from(&user, private_world("Eldoria", "A land of rivers.")).await;
    let first =
        stack.create_story_from(&user, &world.id, private_story("The Crossing", "Mira Vale sailed with Hale.")).await;
    let second =
        stack.create_story_from(&user, &world.id, private_story("The Stranger", "Corin Ash came to Greyhaven.")).await;
    let doomed = stack.spawn_crashable_worker(on_model(&model)).await;
    let spec = BatchAnalyze { world_id: world.id.clone(), story_ids: vec![first.id.clone(), second.id.clone()] };
    let job = submit_to(&mut doomed.jobs(), &user, Kind::BatchAnalyze(spec)).await;
    for _ in 0..2 {
        model.request_within(common::JOB_TIMEOUT).await;
    }

    let finished = take_over(&stack, &model, doomed, &user, &job.id).await;

    assert_eq!(finished.state(), JobState::Succeeded, "{finished:?}");
    assert_eq!(finished.attempts, 2, "the dead worker's attempt and the survivor's");
    assert_eq!(model.unread_requests(), 1, "the survivor asked about the second story only");
    let (entities, locations) = names(&stack, &user, &world.id).await;
    assert_eq!(entities, ["Corin Ash", "Hale", "Mira Vale"], "the first answer's and the second story's");
    assert_eq!(locations, ["Greyhaven", "Port Sorrow"]);
    let first = story(&stack, &user, &first.id).await;
    assert_eq!((first.entity_ids.len(), first.location_ids.len()), (2, 1), "the first answer's links: {first:?}");
    let second = story(&stack, &user, &second.id).await;
    assert_eq!((second.entity_ids.len(), second.location_ids.len()), (1, 1), "{second:?}");
    let reused = stack.stored_updates(&job.id).await.into_iter().any(|update| {
        matches!(update.kind, Some(job_update::Kind::Progress(p)) if p.message.contains("answer from an earlier attempt"))
    });
    assert!(reused, "the job says it reused the saved answer");
}

async fn an_extraction_taken_over_keeps_the_events_its_dead_worker_made(backend: Backend) {
    let script = vec![Reply::streaming(&[EVENTS]), Reply::hang(), Reply::streaming(&[OTHER_EVENTS])];
    let mut model = FakeOpenAi::start_script(script).await;
    let stack = spawn_services(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world_from(&user, private_world("Eldoria", "A land of rivers.")).await;
    stack.create_story_from(&user, &world.id, private_story("The Crossing", "Mira Vale sailed into a storm.")).await;
    stack.create_story_from(&user, &world.id, private_story("The Return", "Mira Vale came home.")).await;
    let doomed = stack.spawn_crashable_worker(on_model(&model)).await;
    // Forced: an extraction made before is replaced, but not the one this job made.
    let spec = ExtractEvents { target: Some(Target::WorldId(world.id.clone())), force: true };
    let job = submit_to(&mut doomed.jobs(), &user, Kind::ExtractEvents(spec)).await;
    for _ in 0..2 {
        model.request_within(common::JOB_TIMEOUT).await;
    }

    let finished = take_over(&stack, &model, doomed, &user, &job.id).await;

    assert_eq!(finished.state(), JobState::Succeeded, "{finished:?}");
    assert_eq!(model.unread_requests(), 1, "the survivor asked about the second story only");
    let request = ListEventsRequest { world_id: world.id.clone(), page_size: 100, ..Default::default() };
    let events = stack.events().list_events(authed(request, &user.token)).await.expect("list").into_inner().events;
    let mut titles: Vec<&str> = events.iter().map(|e| e.title.as_str()).collect();
    titles.sort_unstable();
    assert_eq!(titles, ["A homecoming", "A storm at sea", "The crossing begins"], "each event once");
    let Some(job_result::Kind::Events(result)) = finished.result.and_then(|r| r.kind) else { panic!("events") };
    let mut created = result.created_event_ids;
    let mut listed: Vec<String> = events.into_iter().map(|e| e.id).collect();
    created.sort_unstable();
    listed.sort_unstable();
    assert_eq!(created, listed, "the result names the events that exist");
}

/// Queues a Paraphrase job straight into the job database and claims it as
/// `worker_id` with a lease of `lease`.
async fn claim_new_job(db: &Db, stack: &Stack, worker_id: &str, lease: Duration) -> Claimed {
    let settings = stack.worker_settings(|_| {});
    let spec = JobSpec { kind: Some(paraphrase("The old man said hello to the sea.")), ..JobSpec::default() };
    store::create(db, &settings.queue, Uuid::now_v7(), spec, None).await.expect("queue a job");
    let mut claimed = queue::claim(db, worker_id, 1, lease).await.expect("claim");
    claimed.pop().expect("the job is claimed")
}

/// The job database, as a worker process opens it.
async fn jobs_db(stack: &Stack) -> Db {
    Db::connect(&stack.jobs_database.url, 2, &sqlx::migrate!("./migrations")).await.expect("open the job database")
}

async fn a_stale_run_of_a_job_writes_nothing(backend: Backend) {
    let stack = spawn_services(backend).await;
    let db = jobs_db(&stack).await;
    let worker_id: Arc<str> = "worker-stalled".into();
    let stale = claim_new_job(&db, &stack, &worker_id, Duration::ZERO).await;
    // Its heartbeat stalled: the lease expired and the same worker claimed the job again.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let current = queue::claim(&db, &worker_id, 1, LEASE).await.expect("claim").pop().expect("claimed again");
    assert_eq!((stale.job.attempts, current.job.attempts), (1, 2));
    let writer = Writer::spawn(db.clone(), worker_id, broadcast::channel(16).0);
    let stale_run = Recorder::new(stale.id, stale.job.attempts.into(), stale.last_seq, writer.clone());
    let current_run = Recorder::new(current.id, current.job.attempts.into(), current.last_seq, writer);

    stale_run.progress(50, "the stale run");
    assert!(!stale_run.flush().await.expect("written or refused"), "a stale run's progress is refused");
    let saved = stale_run.save_answer("paraphrase", "the stale answer".into()).await.expect("saved or refused");
    assert!(!saved, "a stale run's answer is refused");
    let end = stale_run.finished(JobState::Succeeded, None, None);
    assert!(!stale_run.end(end).await.expect("written or refused"), "a stale run's end is refused");
    current_run.progress(10, "the current run");
    let saved = current_run.save_answer("paraphrase", "the answer".into()).await.expect("saved or refused");

    assert!(saved, "the current run saves its answer");
    let answer = store::saved_answer(&db, current.id, "paraphrase").await.expect("read the answer");
    assert_eq!(answer.as_deref(), Some("the answer"));
    let job = store::fetch(&db.reader, current.id).await.expect("read the job").expect("the job");
    assert_eq!(job.state(), JobState::Running, "{job:?}");
    assert_eq!(job.progress.map(|p| p.message).as_deref(), Some("the current run"));
}

async fn a_deleted_job_takes_its_saved_answers_along(backend: Backend) {
    let stack = spawn_services(backend).await;
    let db = jobs_db(&stack).await;
    let worker_id: Arc<str> = "worker-1".into();
    let claimed = claim_new_job(&db, &stack, &worker_id, LEASE).await;
    let writer = Writer::spawn(db.clone(), worker_id, broadcast::channel(16).0);
    let run = Recorder::new(claimed.id, claimed.job.attempts.into(), claimed.last_seq, writer);
    assert!(run.save_answer("paraphrase", "the answer".into()).await.expect("saved"));
    assert!(run.end(run.finished(JobState::Succeeded, None, None)).await.expect("ended"));

    store::delete(&db, claimed.id).await.expect("delete the job");

    let row = sqlx::query("SELECT COUNT(*) FROM job_answers WHERE job_id = $1")
        .bind(claimed.id.to_string())
        .fetch_one(&db.reader)
        .await
        .expect("count the answers");
    assert_eq!(row.try_get::<i64, _>(0).expect("a count"), 0, "the answers went with the job");
}

/// The output a dead worker had streamed is not kept: the attempt that takes the job
/// over starts it over, as its RUNNING update tells watchers it does.
async fn a_job_taken_over_starts_its_output_over(backend: Backend) {
    const SUGGESTIONS: &str = r#"{"suggestions": ["One way.", "Another way.", "A third way."]}"#;
    let partial = Reply::event_stream().event(&content_chunk("{\"suggestions\": [\"Half")).hang_until_closed();
    let model = FakeOpenAi::start_script(vec![partial, Reply::streaming(&[SUGGESTIONS])]).await;
    let stack = spawn_services(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let doomed = stack.spawn_crashable_worker(on_model(&model)).await;
    let job = submit_to(&mut doomed.jobs(), &user, paraphrase("Crash midway.")).await;
    stack.wait_for_row(&job.id, "the first attempt's output", |row| !row.output.is_empty()).await;
    let done = take_over(&stack, &model, doomed, &user, &job.id).await;
    assert_eq!((done.state(), done.attempts), (JobState::Succeeded, 2), "{done:?}");
    assert_eq!(done.output, SUGGESTIONS, "only the attempt that finished is in the output");
}
