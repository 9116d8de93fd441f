//! The stack as internal callers meet it: gRPC straight to story-service and
//! gpt-worker, with the clients generated in `fabula_contracts`. The core flow (an
//! account, a world and a story, a job submitted with the story owner's token,
//! followed to its end, its results read back), and each service checking tokens
//! itself, the gateway being no lock of theirs.

use fabula_contracts::pb::{
    jobs::{
        AnalyzeStory, Apply, CreateJobRequest, JobSpec, JobState, WaitJobRequest, WatchJobRequest, job_result,
        job_spec::Kind, job_update,
    },
    story::{
        CreateStoryRequest, CreateWorldRequest, GetStoryRequest, ListEntitiesRequest, ListLocationsRequest, Story,
        World,
    },
};
use fabula_testkit::{Backend, StoryClients, authed, both_databases, connect, jobs_client, reason};
use tonic::{Code, Request, Status};

use crate::{jobs::CROSSING, stack};

both_databases!(an_internal_caller_runs_the_core_flow_over_grpc, each_service_checks_tokens_itself);

async fn an_internal_caller_runs_the_core_flow_over_grpc(backend: Backend) {
    let running = stack::start(backend).await;
    let story_service = StoryClients::connect(running.addresses.story).await;
    let ada = story_service.register_with_model_access("ada").await;
    let (ada_id, token) = (ada.id.clone(), ada.token.as_str());

    let world = CreateWorldRequest {
        world: Some(World { name: "Eldoria".into(), ..Default::default() }),
        ..Default::default()
    };
    let world = story_service.worlds().create_world(authed(world, token)).await;
    let world = world.expect("create a world").into_inner();
    assert_eq!(world.owner_id, ada_id);
    let story = Story { title: "The Crossing".into(), content: CROSSING.into(), ..Default::default() };
    let story = CreateStoryRequest { world_id: world.id.clone(), story: Some(story), ..Default::default() };
    let mut stories = story_service.stories();
    let story = stories.create_story(authed(story, token)).await.expect("create a story").into_inner();

    // The job is submitted to gpt-worker with the story owner's own token.
    let mut jobs = jobs_client(connect(running.addresses.worker).await);
    let kind = Kind::AnalyzeStory(AnalyzeStory { story_id: story.id.clone() });
    let spec = JobSpec { kind: Some(kind), apply: Apply::Auto.into() };
    let job = jobs.create_job(authed(CreateJobRequest { spec: Some(spec), ..Default::default() }, token)).await;
    let job = job.expect("create a job").into_inner();
    assert_eq!((job.state(), job.owner_id.as_str()), (JobState::Queued, ada_id.as_str()));
    let timeout = Some(prost_types::Duration { seconds: 30, nanos: 0 });
    let wait = WaitJobRequest { id: job.id.clone(), timeout };
    let done = jobs.wait_job(authed(wait, token)).await.expect("wait").into_inner();
    assert_eq!((done.state(), done.attempts), (JobState::Succeeded, 1), "{done:?}");

    // The watch replays the job from its first update to the same end.
    let watch = WatchJobRequest { id: job.id.clone(), after_seq: 0 };
    let mut updates = jobs.watch_job(authed(watch, token)).await.expect("watch").into_inner();
    let mut seqs = Vec::new();
    let mut last = None;
    while let Some(update) = updates.message().await.expect("the stream reads") {
        seqs.push(update.seq);
        last = update.kind;
    }
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "numbered from one without a gap");
    assert_eq!(last, Some(job_update::Kind::Finished(Box::new(done.clone()))), "the watch ends with the finished job");

    // What the job found is in story-service, linked to the story.
    let Some(job_result::Kind::Analyses(analyses)) = done.result.and_then(|r| r.kind) else { panic!("an analysis") };
    let analysis = &analyses.stories[0];
    let entities = ListEntitiesRequest { world_id: world.id.clone(), page_size: 50, ..Default::default() };
    let entities = story_service.entities().list_entities(authed(entities, token)).await;
    let mut names: Vec<String> = entities.expect("list").into_inner().entities.into_iter().map(|e| e.name).collect();
    names.sort();
    assert_eq!(names, ["Mira", "Mira Vale", "Old Tomas", "Tomas"]);
    let locations = ListLocationsRequest { world_id: world.id.clone(), page_size: 50, ..Default::default() };
    let locations = story_service.locations().list_locations(authed(locations, token)).await;
    assert_eq!(locations.expect("list").into_inner().locations.len(), 3);
    let linked = stories.get_story(authed(GetStoryRequest { id: story.id.clone() }, token)).await;
    let linked = linked.expect("get the story").into_inner();
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    assert_eq!(sorted(linked.entity_ids), sorted(analysis.created_entity_ids.clone()), "entities linked");
    assert_eq!(sorted(linked.location_ids), sorted(analysis.created_location_ids.clone()), "places linked");
    running.stop().await;
}

async fn each_service_checks_tokens_itself(backend: Backend) {
    let running = stack::start(backend).await;
    let story_service = StoryClients::connect(running.addresses.story).await;
    let bob = story_service.register("bob").await;
    let mut worlds = story_service.worlds();
    let mut jobs = jobs_client(connect(running.addresses.worker).await);
    let world =
        || CreateWorldRequest { world: Some(World { name: "W".into(), ..Default::default() }), ..Default::default() };
    let spec = || CreateJobRequest {
        spec: Some(JobSpec {
            kind: Some(Kind::AnalyzeStory(AnalyzeStory { story_id: uuid::Uuid::now_v7().to_string() })),
            ..Default::default()
        }),
        ..Default::default()
    };

    let missing = (Code::Unauthenticated, "TOKEN_MISSING".to_owned());
    let malformed = (Code::Unauthenticated, "TOKEN_MALFORMED".to_owned());
    assert_eq!(refusal(worlds.create_world(Request::new(world())).await), missing, "story-service, no token");
    assert_eq!(refusal(worlds.create_world(authed(world(), "not.a.token")).await), malformed, "story-service");
    assert_eq!(refusal(jobs.create_job(Request::new(spec())).await), missing, "gpt-worker, no token");
    assert_eq!(refusal(jobs.create_job(authed(spec(), "not.a.token")).await), malformed, "gpt-worker");
    let no_access = refusal(jobs.create_job(authed(spec(), &bob.token)).await);
    assert_eq!(no_access, (Code::PermissionDenied, "MODEL_ACCESS_REQUIRED".to_owned()), "gpt-worker, no model access");
    running.stop().await;
}

/// The code and `ErrorInfo.reason` of a refused call.
#[track_caller]
fn refusal<T: std::fmt::Debug>(result: Result<tonic::Response<T>, Status>) -> (Code, String) {
    let status = result.expect_err("refused");
    (status.code(), reason(&status).unwrap_or_default())
}
