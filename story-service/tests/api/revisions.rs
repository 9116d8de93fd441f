//! RevisionService: writes record revisions (by a person, or by a job through
//! gpt-worker's delegated token), RestoreRevision brings a resource back (a deleted
//! one too, within the retention time), UndoJob reverts a job's changes but those a
//! person edited since, and who may do which.

use crate::common;

use std::time::Duration;

use common::*;
use fabula_contracts::pb::story::{
    CreateEntityRequest, CreateEventRequest, CreateLocationRequest, CreateStoryRequest, DeleteEntityRequest,
    DeleteEventRequest, DeleteLocationRequest, DeleteStoryRequest, Entity, Event, EventConnection, GetEntityRequest,
    GetEventRequest, GetLocationRequest, GetStoryRequest, ListRevisionsRequest, Location, ResourceKind,
    RestoreRevisionRequest, Revision, RevisionKind, ShareRole, Story, UndoJobRequest, UpdateEntityRequest,
    UpdateStoryRequest, Visibility, author::Via, revision_service_client::RevisionServiceClient, snapshot::Resource,
};
use prost_types::FieldMask;
use tonic::{Code, Status, transport::Channel};
use uuid::Uuid;

both_databases!(
    updates_record_who_and_the_fields_before_and_after,
    restore_brings_a_revision_back_and_checks_the_etag,
    deleted_stories_and_entities_come_back_within_the_retention_time,
    deleted_events_and_locations_come_back_with_what_still_exists,
    readers_cannot_restore_and_strangers_cannot_list,
    undo_job_reverts_its_changes_but_those_a_person_edited_since,
    refuses_bad_revision_requests_with_their_reason,
);

fn revisions(app: &TestApp) -> RevisionServiceClient<Channel> {
    RevisionServiceClient::new(app.channel())
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() })
}

async fn create_entity(app: &TestApp, token: &str, world_id: &str, name: &str) -> Entity {
    let entity = Entity { name: name.into(), ..Entity::default() };
    let request = CreateEntityRequest { world_id: world_id.into(), entity: Some(entity), request_id: String::new() };
    app.entities().create_entity(authed(request, token)).await.expect("create an entity").into_inner()
}

async fn rename_entity(app: &TestApp, token: &str, entity: &Entity, name: &str) -> Entity {
    let sent = Entity { id: entity.id.clone(), etag: entity.etag.clone(), name: name.into(), ..Entity::default() };
    let request = UpdateEntityRequest { entity: Some(sent), update_mask: mask(&["name"]) };
    app.entities().update_entity(authed(request, token)).await.expect("rename an entity").into_inner()
}

async fn get_entity(app: &TestApp, token: &str, id: &str) -> Result<Entity, Status> {
    app.entities().get_entity(authed(GetEntityRequest { id: id.into() }, token)).await.map(|r| r.into_inner())
}

/// Every revision of `resource_id`, newest first, read one page of `page_size` at a time.
async fn history(app: &TestApp, token: &str, resource_id: &str, page_size: i32) -> Vec<Revision> {
    let (mut all, mut page_token) = (Vec::new(), String::new());
    loop {
        let request = ListRevisionsRequest { resource_id: resource_id.into(), page_size, page_token };
        let page = revisions(app).list_revisions(authed(request, token)).await.expect("list revisions").into_inner();
        all.extend(page.revisions);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

async fn restore(app: &TestApp, token: &str, id: &str, etag: &str) -> Result<Revision, Status> {
    let request = RestoreRevisionRequest { id: id.into(), etag: etag.into() };
    revisions(app).restore_revision(authed(request, token)).await.map(|r| r.into_inner())
}

fn entity_of(revision: &Revision, after: bool) -> Option<Entity> {
    let snapshot = if after { revision.after.as_ref() } else { revision.before.as_ref() };
    match snapshot.and_then(|s| s.resource.clone()) {
        Some(Resource::Entity(entity)) => Some(entity),
        _ => None,
    }
}

async fn updates_record_who_and_the_fields_before_and_after(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let hero = create_entity(&app, &alice.token, &world.id, "Hero").await;
    let renamed = rename_entity(&app, &alice.token, &hero, "Heroine").await;

    let found = history(&app, &alice.token, &hero.id, 1).await;
    let kinds: Vec<RevisionKind> = found.iter().map(Revision::kind).collect();
    assert_eq!(kinds, [RevisionKind::Update, RevisionKind::Create], "newest first, one page at a time");
    let update = &found[0];
    assert_eq!((update.resource_kind(), update.resource_id.as_str()), (ResourceKind::Entity, hero.id.as_str()));
    assert_eq!(update.world_id, world.id);
    assert_eq!(update.author.as_ref().map(|a| (a.user_id.as_str(), a.via.is_none())), Some((alice.id.as_str(), true)));
    assert_eq!(entity_of(update, false), Some(hero.clone()), "the entity whole before the update");
    assert_eq!(entity_of(update, true), Some(renamed), "and after it");
    assert_eq!(update.changed_fields, ["name"]);
    assert!(found[1].before.is_none(), "a create has nothing before it");
    assert_eq!(entity_of(&found[1], true), Some(hero));

    let story = app.create_story(&alice, &world.id, "Draft", Visibility::Private).await;
    let sent = Story { id: story.id.clone(), etag: story.etag.clone(), summary: "Short".into(), ..Story::default() };
    let request = UpdateStoryRequest { story: Some(sent), update_mask: mask(&["summary"]) };
    app.stories().update_story(authed(request, &alice.token)).await.expect("update a story");
    let found = history(&app, &alice.token, &story.id, 0).await;
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].changed_fields, ["summary"], "a story's update names what changed");
    assert_eq!(
        history(&app, &alice.token, &world.id, 0).await[0].kind(),
        RevisionKind::Create,
        "and worlds have theirs"
    );
}

async fn restore_brings_a_revision_back_and_checks_the_etag(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let hero = create_entity(&app, &alice.token, &world.id, "Hero").await;
    let second = rename_entity(&app, &alice.token, &hero, "Second").await;
    let third = rename_entity(&app, &alice.token, &second, "Third").await;
    let created = history(&app, &alice.token, &hero.id, 0).await.pop().expect("the create");

    expect_code(restore(&app, &alice.token, &created.id, &second.etag).await, Code::Aborted, "ETAG_MISMATCH", "stale");
    expect_invalid(restore(&app, &alice.token, &created.id, "").await, "etag", "an existing resource needs its etag");
    let restored = restore(&app, &alice.token, &created.id, &third.etag).await.expect("restore the create");
    assert_eq!((restored.kind(), restored.restored_revision_id.as_str()), (RevisionKind::Restore, created.id.as_str()));
    assert_eq!(restored.changed_fields, ["name"]);
    let now = get_entity(&app, &alice.token, &hero.id).await.expect("the entity is there");
    assert_eq!(now.name, "Hero", "back to its first name");
    assert_ne!(now.etag, third.etag, "a restore is a write: the etag moves on");
    assert_eq!(entity_of(&restored, true), Some(now));
    assert_eq!(history(&app, &alice.token, &hero.id, 0).await.len(), 4, "create, two updates, the restore");
}

async fn deleted_stories_and_entities_come_back_within_the_retention_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let hero = create_entity(&app, &alice.token, &world.id, "Hero").await;
    let story =
        Story { title: "Tale".into(), content: "Once".into(), entity_ids: vec![hero.id.clone()], ..Story::default() };
    let request = CreateStoryRequest { world_id: world.id.clone(), story: Some(story), request_id: String::new() };
    let tale = app.stories().create_story(authed(request, &alice.token)).await.unwrap().into_inner();
    let delete = DeleteStoryRequest { id: tale.id.clone(), etag: tale.etag.clone() };
    app.stories().delete_story(authed(delete, &alice.token)).await.expect("delete the story");

    let deleted = history(&app, &alice.token, &tale.id, 0).await.remove(0);
    assert_eq!(deleted.kind(), RevisionKind::Delete);
    assert!(deleted.after.is_none(), "nothing after a delete");
    let restored = restore(&app, &alice.token, &deleted.id, "").await.expect("restore the deleted story");
    assert!(restored.before.is_none());
    let back = app.stories().get_story(authed(GetStoryRequest { id: tale.id.clone() }, &alice.token)).await;
    let back = back.expect("the story is back").into_inner();
    assert_eq!((back.title.as_str(), back.content.as_str()), ("Tale", "Once"));
    assert_eq!(back.entity_ids, vec![hero.id.clone()], "with its links");
    assert_ne!(back.etag, tale.etag, "an etag read before the delete does not match again");

    let delete = DeleteEntityRequest { id: hero.id.clone(), etag: hero.etag.clone() };
    app.entities().delete_entity(authed(delete, &alice.token)).await.expect("delete the entity");
    let deleted = history(&app, &alice.token, &hero.id, 0).await.remove(0);
    restore(&app, &alice.token, &deleted.id, "").await.expect("restore the deleted entity");
    assert_eq!(get_entity(&app, &alice.token, &hero.id).await.expect("the entity is back").name, "Hero");

    let strict = spawn_app_with(backend, |settings| settings.deleted_retention = Duration::ZERO).await;
    let bob = strict.register("bob").await;
    let world = strict.create_world(&bob, "Brief", Visibility::Private).await;
    let gone = create_entity(&strict, &bob.token, &world.id, "Gone").await;
    let delete = DeleteEntityRequest { id: gone.id.clone(), etag: gone.etag.clone() };
    strict.entities().delete_entity(authed(delete, &bob.token)).await.expect("delete the entity");
    let deleted = history(&strict, &bob.token, &gone.id, 0).await.remove(0);
    let late = restore(&strict, &bob.token, &deleted.id, "").await;
    expect_code(late, Code::FailedPrecondition, "RETENTION_EXPIRED", "a deletion older than the retention time");
}

async fn deleted_events_and_locations_come_back_with_what_still_exists(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let hero = create_entity(&app, &alice.token, &world.id, "Hero").await;
    let place = Location { name: "Ford".into(), ..Location::default() };
    let request =
        CreateLocationRequest { world_id: world.id.clone(), location: Some(place), request_id: String::new() };
    let ford = app.locations().create_location(authed(request, &alice.token)).await.unwrap().into_inner();
    let event = |title: &str, connections: Vec<EventConnection>| CreateEventRequest {
        world_id: world.id.clone(),
        event: Some(Event {
            title: title.into(),
            entity_ids: vec![hero.id.clone()],
            location_ids: vec![ford.id.clone()],
            connections,
            ..Event::default()
        }),
        request_id: String::new(),
    };
    let cause = app.events().create_event(authed(event("Cause", vec![]), &alice.token)).await.unwrap().into_inner();
    let link = EventConnection { target_event_id: cause.id.clone(), relation: "follows".into() };
    let effect = app.events().create_event(authed(event("Effect", vec![link]), &alice.token)).await.unwrap();
    let effect = effect.into_inner();

    for (id, etag) in [(&effect.id, &effect.etag), (&cause.id, &cause.etag)] {
        let delete = DeleteEventRequest { id: id.clone(), etag: etag.clone() };
        app.events().delete_event(authed(delete, &alice.token)).await.expect("delete an event");
    }
    let delete = DeleteLocationRequest { id: ford.id.clone(), etag: ford.etag.clone() };
    app.locations().delete_location(authed(delete, &alice.token)).await.expect("delete the location");
    let deleted = history(&app, &alice.token, &effect.id, 0).await.remove(0);
    restore(&app, &alice.token, &deleted.id, "").await.expect("restore the effect");
    let back = app.events().get_event(authed(GetEventRequest { id: effect.id.clone() }, &alice.token)).await;
    let back = back.expect("the event is back").into_inner();
    assert_eq!(back.entity_ids, vec![hero.id.clone()], "its entity is still there");
    assert!(back.location_ids.is_empty() && back.connections.is_empty(), "what is gone is left out: {back:?}");

    let deleted = history(&app, &alice.token, &ford.id, 0).await.remove(0);
    restore(&app, &alice.token, &deleted.id, "").await.expect("restore the location");
    let back = app.locations().get_location(authed(GetLocationRequest { id: ford.id.clone() }, &alice.token)).await;
    let back = back.expect("the location is back").into_inner();
    assert_eq!((back.name.as_str(), back.coordinates), ("Ford", None));
}

async fn readers_cannot_restore_and_strangers_cannot_list(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, bob, carol) = (app.register("alice").await, app.register("bob").await, app.register("carol").await);
    let world = app.create_world(&alice, "Shared", Visibility::Private).await;
    app.share(&alice, &world.id, &bob, ShareRole::Reader).await;
    let hero = create_entity(&app, &alice.token, &world.id, "Hero").await;
    let renamed = rename_entity(&app, &alice.token, &hero, "Heroine").await;

    let seen = history(&app, &bob.token, &hero.id, 0).await;
    assert_eq!(seen.len(), 2, "a reader reads the history");
    let create = &seen[1];
    let refused = restore(&app, &bob.token, &create.id, &renamed.etag).await;
    expect_code(refused, Code::PermissionDenied, "PERMISSION_DENIED", "a reader restores");
    let listing = ListRevisionsRequest { resource_id: hero.id.clone(), ..Default::default() };
    let hidden = revisions(&app).list_revisions(authed(listing, &carol.token)).await;
    expect_code(hidden, Code::NotFound, "NOT_FOUND", "a stranger lists a private world's history");
    let hidden = restore(&app, &carol.token, &create.id, &renamed.etag).await;
    expect_code(hidden, Code::NotFound, "NOT_FOUND", "a stranger restores");

    let open = app.create_world(&alice, "Open", Visibility::Public).await;
    let public = create_entity(&app, &alice.token, &open.id, "Known").await;
    assert_eq!(history(&app, &carol.token, &public.id, 0).await.len(), 1, "a public world's history is public");
    let diary = app.create_story(&alice, &open.id, "Diary", Visibility::Private).await;
    let listing = ListRevisionsRequest { resource_id: diary.id.clone(), ..Default::default() };
    let hidden = revisions(&app).list_revisions(authed(listing, &carol.token)).await;
    expect_code(hidden, Code::NotFound, "NOT_FOUND", "a private story's history stays with who may read it");
}

async fn undo_job_reverts_its_changes_but_those_a_person_edited_since(backend: Backend) {
    let (app, worker, _dir) = app_with_worker(backend, |_| {}).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let kept = create_entity(&app, &alice.token, &world.id, "Kept").await;
    let edited = create_entity(&app, &alice.token, &world.id, "Edited").await;
    let job = Uuid::now_v7();
    let alice_id: Uuid = alice.id.parse().unwrap();
    let job_token = worker.token_for_job(alice_id, job);

    let made = create_entity(&app, &job_token, &world.id, "Made by the job").await;
    rename_entity(&app, &job_token, &kept, "Changed by the job").await;
    let by_job = rename_entity(&app, &job_token, &edited, "Also changed by the job").await;
    let person = rename_entity(&app, &alice.token, &by_job, "Then by Alice").await;

    let recorded = history(&app, &alice.token, &made.id, 0).await;
    let author = recorded[0].author.clone().expect("an author");
    assert_eq!((author.user_id, author.via), (alice.id.clone(), Some(Via::JobId(job.to_string()))), "the job wrote it");

    let undo = |token: &str, job_id: String| {
        let request = UndoJobRequest { job_id };
        let token = token.to_owned();
        let mut client = revisions(&app);
        async move { client.undo_job(authed(request, &token)).await.map(|r| r.into_inner()) }
    };
    expect_code(undo(&bob.token, job.to_string()).await, Code::NotFound, "NOT_FOUND", "someone else's job");
    let undone = undo(&alice.token, job.to_string()).await.expect("undo the job");
    let mut reverted: Vec<&str> = undone.undone.iter().map(|r| r.resource_id.as_str()).collect();
    reverted.sort_unstable();
    let mut expected = vec![made.id.as_str(), kept.id.as_str()];
    expected.sort_unstable();
    assert_eq!(reverted, expected, "what the job made and changed");
    assert!(undone.undone.iter().all(|r| r.kind() == RevisionKind::Undo));
    assert_eq!(undone.skipped.len(), 1, "{:?}", undone.skipped);
    let skipped = &undone.skipped[0];
    assert_eq!((skipped.resource_id.as_str(), skipped.reason.as_str()), (edited.id.as_str(), "CHANGED_SINCE"));

    expect_code(
        get_entity(&app, &alice.token, &made.id).await,
        Code::NotFound,
        "NOT_FOUND",
        "the job's entity is gone",
    );
    assert_eq!(get_entity(&app, &alice.token, &kept.id).await.unwrap().name, "Kept", "the job's change is undone");
    assert_eq!(get_entity(&app, &alice.token, &edited.id).await.unwrap(), person, "Alice's edit stands");
}

/// One method of RevisionService and its request.
enum Call {
    List(ListRevisionsRequest),
    Restore(RestoreRevisionRequest),
    Undo(UndoJobRequest),
}

struct BadCase {
    what: &'static str,
    call: Call,
    code: Code,
    reason: &'static str,
    /// The field a BadRequest names, for INVALID_ARGUMENT.
    field: Option<&'static str>,
}

async fn refuses_bad_revision_requests_with_their_reason(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let hero = create_entity(&app, &alice.token, &world.id, "Hero").await;
    let created = history(&app, &alice.token, &hero.id, 0).await.remove(0);
    let list = |resource_id: &str, page_size: i32, page_token: &str| {
        Call::List(ListRevisionsRequest { resource_id: resource_id.into(), page_size, page_token: page_token.into() })
    };
    let restore = |id: &str, etag: &str| Call::Restore(RestoreRevisionRequest { id: id.into(), etag: etag.into() });
    let undo = |job_id: &str| Call::Undo(UndoJobRequest { job_id: job_id.into() });
    let invalid = |what, call, field| BadCase {
        what,
        call,
        code: Code::InvalidArgument,
        reason: "INVALID_ARGUMENT",
        field: Some(field),
    };
    let cases = [
        invalid("a malformed resource id", list("hero", 0, ""), "resource_id"),
        invalid("a negative page size", list(&hero.id, -1, ""), "page_size"),
        invalid("a forged page token", list(&hero.id, 0, "not-a-token"), "page_token"),
        BadCase {
            what: "an unknown resource",
            call: list(&unknown_id(), 0, ""),
            code: Code::NotFound,
            reason: "NOT_FOUND",
            field: None,
        },
        invalid("a malformed revision id", restore("r1", &hero.etag), "id"),
        invalid("an etag past its limit", restore(&created.id, &"9".repeat(101)), "etag"),
        BadCase {
            what: "an unknown revision",
            call: restore(&unknown_id(), &hero.etag),
            code: Code::NotFound,
            reason: "NOT_FOUND",
            field: None,
        },
        BadCase {
            what: "a wrong etag",
            call: restore(&created.id, "\"7\""),
            code: Code::Aborted,
            reason: "ETAG_MISMATCH",
            field: None,
        },
        invalid("a malformed job id", undo("job-1"), "job_id"),
        BadCase {
            what: "a job with no changes",
            call: undo(&unknown_id()),
            code: Code::NotFound,
            reason: "NOT_FOUND",
            field: None,
        },
    ];
    let mut client = revisions(&app);
    for case in cases {
        let result = match case.call {
            Call::List(request) => client.list_revisions(authed(request, &alice.token)).await.map(|_| ()),
            Call::Restore(request) => client.restore_revision(authed(request, &alice.token)).await.map(|_| ()),
            Call::Undo(request) => client.undo_job(authed(request, &alice.token)).await.map(|_| ()),
        };
        let status = expect_code(result, case.code, case.reason, case.what);
        if let Some(field) = case.field {
            assert_eq!(bad_fields(&status), [field], "{}", case.what);
        }
    }
}
