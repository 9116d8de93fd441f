//! Crash recovery: a worker that dies mid-job still holding its lease loses nothing.
//! Once the lease expires another worker takes the job over and completes it, and
//! what the dead worker had written already is not written twice.

use crate::common;
use crate::support;

use std::time::Duration;

use common::{Backend, Stack, TestUser, authed, spawn_services, submit_to, wait_for};
use fabula_proto::pb::{
    jobs::{BatchAnalyze, JobState, job_result, job_spec::Kind},
    story::{GetStoryRequest, ListEntitiesRequest, ListLocationsRequest},
};
use support::{FakeOpenAi, Reply};

both_databases!(a_job_whose_worker_died_is_completed_by_another_without_duplicates);

const ANALYSIS: &str = r#"{"entities": [
    {"name": "Mira Vale", "entity_type": "character", "description": "A sailor."},
    {"name": "Hale", "entity_type": "character", "description": "A captain."}],
  "locations": [{"name": "Port Sorrow", "description": "A harbour town."}]}"#;
/// Short enough that the job is taken over quickly once its worker is gone.
const LEASE: Duration = Duration::from_millis(1_500);

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
    let base_url = model.base_url.clone();
    let configure = move |s: &mut gpt_worker::Settings| {
        s.llm.base_url = Some(base_url.clone());
        s.queue.lease = LEASE;
    };
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world(&user, "Eldoria", "A land of rivers.").await;
    let first = stack.create_story(&user, &world.id, "The Crossing", "Mira Vale sailed with Hale.").await;
    let second = stack.create_story(&user, &world.id, "The Return", "Mira Vale came home to Port Sorrow.").await;
    let doomed = stack.spawn_crashable_worker(configure.clone()).await;
    let spec = BatchAnalyze { world_id: world.id.clone(), story_ids: vec![first.id.clone(), second.id.clone()] };
    let job = submit_to(&mut doomed.jobs(), &user, Kind::BatchAnalyze(spec)).await;
    for _ in 0..2 {
        model.request_within(common::JOB_TIMEOUT).await;
    }
    let written_before = names(&stack, &user, &world.id).await;
    assert_eq!(written_before.0, ["Hale", "Mira Vale"], "the first story's entities were created");

    doomed.kill();
    let survivor = stack.spawn_worker(configure).await;
    let finished = wait_for(&mut survivor.jobs(), &user, &job.id).await;

    assert_eq!(finished.state(), JobState::Succeeded, "{finished:?}");
    assert_eq!(finished.attempts, 2, "the dead worker's attempt and the survivor's");
    assert_eq!(names(&stack, &user, &world.id).await, written_before, "no entity or place made twice");
    let Some(job_result::Kind::Analyses(result)) = finished.result.and_then(|r| r.kind) else {
        panic!("an analysis result")
    };
    assert_eq!(result.stories.len(), 2);
    for story in [&first, &second] {
        let request = GetStoryRequest { id: story.id.clone() };
        let linked = stack.stories().get_story(authed(request, &user.token)).await.expect("get").into_inner();
        assert_eq!(linked.entity_ids.len(), 2, "{} links both characters once: {linked:?}", story.title);
        assert_eq!(linked.location_ids.len(), 1, "{} links the harbour once: {linked:?}", story.title);
    }
}
