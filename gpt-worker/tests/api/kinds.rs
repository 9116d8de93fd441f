//! Every job kind end to end with the offline model: submitted over gRPC, run by a
//! real worker, its results read back through story-service. The kinds that write
//! run with `apply: AUTO` ([`Stack::run_job`]) but where a test says otherwise: by
//! default they end with a proposal for review.

use crate::common;

use std::time::Duration;

use common::{
    Backend, Stack, TestUser, authed, both_databases, paraphrase, private_story, private_world, spawn_stack,
    spawn_stack_with, submit_spec_to,
};
use fabula_contracts::pb::{
    jobs::{
        AnalysesResult, AnalyzeStory, BatchAnalyze, DescribeStory, DescribeWorld, EventsResult, ExtractEvents,
        GetJobRequest, Job, JobSpec, JobState, extract_events::Target, job_result, job_spec::Kind, job_update,
    },
    story::{
        AcceptProposalRequest, ChangeState, Entity, Event, GetProposalRequest, GetStoryRequest, GetWorldRequest,
        ListEntitiesRequest, ListEventsRequest, ListLocationsRequest, ListRevisionsRequest, Location, ProposalState,
        RevisionKind, Story, UndoJobRequest, UpdateEventRequest, UpdateStoryRequest, UpdateWorldRequest, World,
        author::Via,
    },
};
use fabula_testkit::fake_model::{FakeOpenAi, Reply, content_chunk};
use prost_types::FieldMask;

both_databases!(
    describe_world_applies_its_text_to_the_world,
    describe_story_sets_the_story_summary,
    analyze_story_creates_and_links_entities_and_places_once,
    batch_analyze_reports_progress_per_story,
    extract_events_is_cached_until_forced,
    paraphrase_gives_three_suggestions,
    a_human_edit_made_meanwhile_wins_over_a_description,
    what_a_job_writes_is_recorded_as_the_jobs_and_can_be_undone,
    review_is_the_default_and_changes_nothing_until_accepted,
    extracting_again_keeps_what_a_person_edited_and_changes_only_what_a_job_made,
);

const SAILING: &str = "Mira Vale sailed from Port Sorrow in the year 1204, in the Age of Embers. \
    Captain Hale waited for her at Greyhaven. In 1210 Mira returned to Port Sorrow with Hale.";
const MINING: &str = "Borin dug beneath Ironhold in 1190. Mira Vale found him there, deep in Ironhold.";

/// The result of a job that must have succeeded with the offline model.
fn offline_result(job: &Job) -> job_result::Kind {
    assert_eq!(job.state(), JobState::Succeeded, "the job succeeded: {job:?}");
    assert_eq!(job.attempts, 1, "in one attempt");
    assert!(job.error.is_none(), "no error: {job:?}");
    let result = job.result.clone().expect("a succeeded job has a result");
    assert_eq!(result.model, "offline", "labelled as the offline model's work");
    result.kind.expect("the result has a kind")
}

async fn world_entities(stack: &Stack, user: &TestUser, world_id: &str) -> Vec<Entity> {
    let request = ListEntitiesRequest { world_id: world_id.into(), page_size: 100, ..Default::default() };
    stack.entities().list_entities(authed(request, &user.token)).await.expect("list entities").into_inner().entities
}

async fn world_locations(stack: &Stack, user: &TestUser, world_id: &str) -> Vec<Location> {
    let request = ListLocationsRequest { world_id: world_id.into(), page_size: 100, ..Default::default() };
    stack.locations().list_locations(authed(request, &user.token)).await.expect("list locations").into_inner().locations
}

async fn world_events(stack: &Stack, user: &TestUser, world_id: &str) -> Vec<Event> {
    let request = ListEventsRequest { world_id: world_id.into(), page_size: 100, ..Default::default() };
    stack.events().list_events(authed(request, &user.token)).await.expect("list events").into_inner().events
}

async fn story(stack: &Stack, user: &TestUser, id: &str) -> Story {
    stack
        .stories()
        .get_story(authed(GetStoryRequest { id: id.into() }, &user.token))
        .await
        .expect("get story")
        .into_inner()
}

fn analyses(job: &Job) -> AnalysesResult {
    match offline_result(job) {
        job_result::Kind::Analyses(analyses) => analyses,
        other => panic!("an analysis job gave {other:?}"),
    }
}

fn events(job: &Job) -> EventsResult {
    match offline_result(job) {
        job_result::Kind::Events(events) => events,
        other => panic!("an events job gave {other:?}"),
    }
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

async fn describe_world_applies_its_text_to_the_world(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world_from(&user, private_world("Eldoria", "A land of rivers and salt.")).await;

    let job = stack.run_job(&user, Kind::DescribeWorld(DescribeWorld { world_id: world.id.clone() })).await;

    let job_result::Kind::Description(description) = offline_result(&job) else { panic!("not a description: {job:?}") };
    assert!(description.applied, "the description was applied");
    assert!(!job.result.as_ref().unwrap().proposal_id.is_empty(), "through a proposal the job accepted");
    assert!(description.text.starts_with("[offline]"), "offline text is labelled: {:?}", description.text);
    assert_eq!(job.output, description.text, "the streamed output is the text");
    assert_eq!(job.progress.as_ref().map(|p| p.percent), Some(100));
    let request = GetWorldRequest { id: world.id.clone() };
    let stored = stack.worlds().get_world(authed(request, &user.token)).await.expect("get the world").into_inner();
    assert_eq!(stored.description, description.text, "story-service holds the new description");
}

async fn describe_story_sets_the_story_summary(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world_from(&user, private_world("Eldoria", "A land of rivers.")).await;
    let written = stack.create_story_from(&user, &world.id, private_story("The Crossing", SAILING)).await;

    let job = stack.run_job(&user, Kind::DescribeStory(DescribeStory { story_id: written.id.clone() })).await;

    let job_result::Kind::Description(description) = offline_result(&job) else { panic!("not a description: {job:?}") };
    assert!(description.applied, "the summary was applied");
    assert!(description.text.contains("Mira Vale"), "the summary is about the story: {:?}", description.text);
    let stored = story(&stack, &user, &written.id).await;
    assert_eq!(stored.summary, description.text, "story-service holds the summary");
    assert_eq!(stored.content, SAILING, "the content is untouched");
}

async fn analyze_story_creates_and_links_entities_and_places_once(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world_from(&user, private_world("Eldoria", "A land of rivers.")).await;
    let written = stack.create_story_from(&user, &world.id, private_story("The Crossing", SAILING)).await;
    let spec = Kind::AnalyzeStory(AnalyzeStory { story_id: written.id.clone() });

    let first = analyses(&stack.run_job(&user, spec.clone()).await);

    let [analysis] = &first.stories[..] else { panic!("one story analysed: {first:?}") };
    assert_eq!(analysis.story_id, written.id);
    let entities = world_entities(&stack, &user, &world.id).await;
    let locations = world_locations(&stack, &user, &world.id).await;
    let entity_names: Vec<&str> = entities.iter().map(|e| e.name.as_str()).collect();
    let location_names: Vec<&str> = locations.iter().map(|l| l.name.as_str()).collect();
    assert!(entity_names.contains(&"Mira Vale") && entity_names.contains(&"Hale"), "{entity_names:?}");
    assert!(location_names.contains(&"Port Sorrow") && location_names.contains(&"Greyhaven"), "{location_names:?}");
    assert_eq!(sorted(analysis.created_entity_ids.clone()), sorted(entities.iter().map(|e| e.id.clone()).collect()));
    assert_eq!(sorted(analysis.created_location_ids.clone()), sorted(locations.iter().map(|l| l.id.clone()).collect()));
    let linked = story(&stack, &user, &written.id).await;
    assert_eq!(sorted(linked.entity_ids.clone()), sorted(analysis.linked_entity_ids.clone()), "entities linked");
    assert_eq!(sorted(linked.location_ids.clone()), sorted(analysis.linked_location_ids.clone()), "places linked");

    let second = analyses(&stack.run_job(&user, spec).await);

    let [again] = &second.stories[..] else { panic!("one story analysed: {second:?}") };
    assert!(again.created_entity_ids.is_empty() && again.created_location_ids.is_empty(), "nothing new: {again:?}");
    assert_eq!(sorted(again.linked_entity_ids.clone()), sorted(analysis.linked_entity_ids.clone()));
    assert_eq!(world_entities(&stack, &user, &world.id).await.len(), entities.len(), "no duplicate entity");
    assert_eq!(world_locations(&stack, &user, &world.id).await.len(), locations.len(), "no duplicate place");
    let relinked = story(&stack, &user, &written.id).await;
    assert_eq!(relinked.entity_ids, linked.entity_ids, "no duplicate link");
}

async fn batch_analyze_reports_progress_per_story(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world_from(&user, private_world("Eldoria", "A land of rivers.")).await;
    let sailing = stack.create_story_from(&user, &world.id, private_story("The Crossing", SAILING)).await;
    let mining = stack.create_story_from(&user, &world.id, private_story("Deep Roads", MINING)).await;
    let spec = BatchAnalyze { world_id: world.id.clone(), story_ids: vec![sailing.id.clone(), mining.id.clone()] };

    let job = stack.run_job(&user, Kind::BatchAnalyze(spec)).await;

    let result = analyses(&job);
    let ids: Vec<&str> = result.stories.iter().map(|s| s.story_id.as_str()).collect();
    assert_eq!(ids, [sailing.id.as_str(), mining.id.as_str()], "one analysis per story, in order");
    let entities = world_entities(&stack, &user, &world.id).await;
    let miras = entities.iter().filter(|e| e.name == "Mira Vale").count();
    assert_eq!(miras, 1, "a name found in both stories is created once: {entities:?}");
    let mira_id = &entities.iter().find(|e| e.name == "Mira Vale").expect("Mira").id;
    for analysis in &result.stories {
        assert!(analysis.linked_entity_ids.contains(mira_id), "Mira is linked to {}", analysis.story_id);
    }
    let progress: Vec<(i32, String)> = stack
        .stored_updates(&job.id)
        .await
        .into_iter()
        .filter_map(|u| match u.kind {
            Some(job_update::Kind::Progress(p)) => Some((p.percent, p.message)),
            _ => None,
        })
        .collect();
    for title in ["The Crossing", "Deep Roads"] {
        assert!(progress.iter().any(|(_, m)| m.contains(title)), "progress names {title}: {progress:?}");
    }
    let halfway = progress.iter().position(|(percent, _)| *percent == 50).expect("the first story ends at 50%");
    assert!(progress[..halfway].iter().any(|(_, m)| m.contains("The Crossing")), "{progress:?}");
    assert!(progress[halfway..].iter().any(|(_, m)| m.contains("Deep Roads")), "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0].0 <= w[1].0), "progress never goes back: {progress:?}");
}

async fn extract_events_is_cached_until_forced(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world_from(&user, private_world("Eldoria", "A land of rivers.")).await;
    let written = stack.create_story_from(&user, &world.id, private_story("The Crossing", SAILING)).await;
    let spec = |force| Kind::ExtractEvents(ExtractEvents { target: Some(Target::StoryId(written.id.clone())), force });

    let first = events(&stack.run_job(&user, spec(false)).await);

    assert!(first.cached_story_ids.is_empty(), "nothing cached yet");
    let stored = world_events(&stack, &user, &world.id).await;
    assert_eq!(sorted(stored.iter().map(|e| e.id.clone()).collect()), sorted(first.created_event_ids.clone()));
    let mut years: Vec<i64> = stored.iter().map(|e| e.year).collect();
    years.sort_unstable();
    assert_eq!(years, [1204, 1210], "an event per dated sentence: {stored:?}");
    assert!(stored.iter().all(|e| e.story_id.as_deref() == Some(written.id.as_str())), "events name their story");

    let cached = events(&stack.run_job(&user, spec(false)).await);

    assert_eq!(cached.cached_story_ids, [written.id.as_str()], "an unchanged story is cached");
    assert!(cached.created_event_ids.is_empty(), "nothing created");
    assert_eq!(world_events(&stack, &user, &world.id).await.len(), stored.len());

    let forced = stack.run_job(&user, spec(true)).await;

    assert!(events(&forced).cached_story_ids.is_empty(), "force ignores the cache");
    assert!(events(&forced).created_event_ids.is_empty(), "the same events again: nothing new");
    assert!(forced.result.unwrap().proposal_id.is_empty(), "and nothing to propose");
    assert_eq!(world_events(&stack, &user, &world.id).await, stored, "nothing deleted, nothing duplicated");
}

async fn paraphrase_gives_three_suggestions(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let user = stack.register_with_model_access("ana").await;

    let job = stack.run_job(&user, paraphrase("The old man said hello to the sea.")).await;

    let job_result::Kind::Suggestions(result) = offline_result(&job) else { panic!("not suggestions: {job:?}") };
    assert_eq!(result.suggestions.len(), 3, "{result:?}");
    assert!(result.suggestions.iter().all(|s| s.starts_with("[offline]")), "{result:?}");
    assert!(result.suggestions[0] != result.suggestions[1] && result.suggestions[1] != result.suggestions[2]);
    assert!(!job.output.is_empty(), "the model's answer streamed into the output");
}

async fn a_human_edit_made_meanwhile_wins_over_a_description(backend: Backend) {
    let slow =
        Reply::event_stream().event(&content_chunk("A land the model made up.")).pause(Duration::from_millis(500));
    let model = FakeOpenAi::start(slow.done()).await;
    let stack = spawn_stack_with(backend, |s| s.llm.base_url = Some(model.base_url.clone())).await;
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world_from(&user, private_world("Eldoria", "A first draft.")).await;
    let job = stack.submit(&user, Kind::DescribeWorld(DescribeWorld { world_id: world.id.clone() })).await;
    stack.wait_until_streaming(&user, &job.id).await;

    let edit = UpdateWorldRequest {
        world: Some(World { id: world.id.clone(), description: "Edited by hand.".into(), ..Default::default() }),
        update_mask: Some(FieldMask { paths: vec!["description".into()] }),
    };
    stack.worlds().update_world(authed(edit, &user.token)).await.expect("a human edit");
    let job = stack.wait(&user, &job.id).await;

    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    let Some(job_result::Kind::Description(result)) = job.result.and_then(|r| r.kind) else { panic!("a description") };
    assert!(!result.applied, "the job reports that it was not applied");
    assert_eq!(result.text, "A land the model made up.", "the text is kept in the result");
    let request = GetWorldRequest { id: world.id.clone() };
    let stored = stack.worlds().get_world(authed(request, &user.token)).await.expect("get").into_inner();
    assert_eq!(stored.description, "Edited by hand.", "the human edit won");
}

async fn what_a_job_writes_is_recorded_as_the_jobs_and_can_be_undone(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world_from(&user, private_world("Eldoria", "A land of rivers.")).await;
    let written = stack.create_story_from(&user, &world.id, private_story("The Crossing", SAILING)).await;

    let job = stack.run_job(&user, Kind::DescribeStory(DescribeStory { story_id: written.id.clone() })).await;

    let request = ListRevisionsRequest { resource_id: written.id.clone(), ..Default::default() };
    let history = stack.revisions().list_revisions(authed(request, &user.token)).await.expect("the history");
    let newest = history.into_inner().revisions.remove(0);
    assert_eq!((newest.kind(), newest.changed_fields.as_slice()), (RevisionKind::Update, &["summary".to_owned()][..]));
    let author = newest.author.expect("an author");
    assert_eq!((author.user_id, author.via), (user.id.clone(), Some(Via::JobId(job.id.clone()))), "the job wrote it");

    let request = UndoJobRequest { job_id: job.id.clone() };
    let undone = stack.revisions().undo_job(authed(request, &user.token)).await.expect("undo the job").into_inner();
    assert_eq!((undone.undone.len(), undone.skipped.len()), (1, 0), "{undone:?}");
    assert_eq!(story(&stack, &user, &written.id).await.summary, "", "the summary is gone again");
}

async fn review_is_the_default_and_changes_nothing_until_accepted(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world_from(&user, private_world("Eldoria", "A land of rivers.")).await;
    let written = stack.create_story_from(&user, &world.id, private_story("The Crossing", SAILING)).await;
    let spec =
        JobSpec { kind: Some(Kind::AnalyzeStory(AnalyzeStory { story_id: written.id.clone() })), ..JobSpec::default() };

    let job = submit_spec_to(&mut stack.jobs(), &user, spec).await;
    let job = stack.wait(&user, &job.id).await;

    let result = analyses(&job);
    assert!(result.stories[0].created_entity_ids.is_empty(), "nothing written: {result:?}");
    let request = GetJobRequest { id: job.id.clone() };
    let got = stack.jobs().get_job(authed(request, &user.token)).await.expect("get the job").into_inner();
    let proposal_id = got.result.expect("a result").proposal_id;
    assert!(!proposal_id.is_empty(), "GetJob names the proposal");
    assert!(world_entities(&stack, &user, &world.id).await.is_empty(), "no entity until the author accepts");
    assert!(story(&stack, &user, &written.id).await.entity_ids.is_empty(), "no link either");
    let request = GetProposalRequest { id: proposal_id.clone() };
    let proposal = stack.proposals().get_proposal(authed(request, &user.token)).await.expect("the proposal");
    let proposal = proposal.into_inner();
    assert_eq!((proposal.state(), proposal.job_id.as_str()), (ProposalState::ProposalOpen, job.id.as_str()));

    let request = AcceptProposalRequest { id: proposal_id, ..AcceptProposalRequest::default() };
    let accepted = stack.proposals().accept_proposal(authed(request, &user.token)).await.expect("accept");

    assert!(accepted.into_inner().changes.iter().all(|c| c.state() == ChangeState::ChangeApplied));
    let names: Vec<String> = world_entities(&stack, &user, &world.id).await.into_iter().map(|e| e.name).collect();
    assert!(names.contains(&"Mira Vale".to_owned()) && names.contains(&"Hale".to_owned()), "{names:?}");
    assert_eq!(story(&stack, &user, &written.id).await.entity_ids.len(), names.len(), "and linked");
}

async fn extracting_again_keeps_what_a_person_edited_and_changes_only_what_a_job_made(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let world = stack.create_world_from(&user, private_world("Eldoria", "A land of rivers.")).await;
    let written = stack.create_story_from(&user, &world.id, private_story("The Crossing", SAILING)).await;
    let spec = Kind::ExtractEvents(ExtractEvents { target: Some(Target::StoryId(written.id.clone())), force: false });
    events(&stack.run_job(&user, spec.clone()).await);
    let made = world_events(&stack, &user, &world.id).await;
    let by_year = |events: &[Event], year: i64| events.iter().find(|e| e.year == year).cloned().expect("an event");
    let (sailing, returning) = (by_year(&made, 1204), by_year(&made, 1210));
    let edit = Event {
        id: sailing.id.clone(),
        etag: sailing.etag.clone(),
        description: "Ana's own words.".into(),
        ..Event::default()
    };
    let request =
        UpdateEventRequest { event: Some(edit), update_mask: Some(FieldMask { paths: vec!["description".into()] }) };
    let edited = stack.events().update_event(authed(request, &user.token)).await.expect("a person edits").into_inner();
    let longer =
        SAILING.replace("Age of Embers.", "Age of Embers, at dawn.").replace("with Hale.", "with Hale and a map.")
            + " In 1215 Hale left Greyhaven for good.";
    let story_now = story(&stack, &user, &written.id).await;
    let update = UpdateStoryRequest {
        story: Some(Story { id: written.id.clone(), etag: story_now.etag, content: longer, ..Story::default() }),
        update_mask: Some(FieldMask { paths: vec!["content".into()] }),
    };
    stack.stories().update_story(authed(update, &user.token)).await.expect("the story grows");

    let again = events(&stack.run_job(&user, spec).await);

    let now = world_events(&stack, &user, &world.id).await;
    assert_eq!(now.len(), 3, "one new event, none deleted: {now:?}");
    assert_eq!(by_year(&now, 1204), edited, "the person's edit survives, untouched");
    assert_eq!(again.changed_event_ids, vec![returning.id.clone()], "only the event a job made and nobody edited");
    assert!(by_year(&now, 1210).description.ends_with("with Hale and a map."), "{:?}", by_year(&now, 1210));
    assert_eq!(again.created_event_ids, [by_year(&now, 1215).id], "the new one");
}
