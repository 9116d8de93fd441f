//! EventService: every method's happy path and each error it returns, the timeline,
//! and what deleting an event, a story or a world does to events.

use crate::common;

use common::*;
use fabula_contracts::pb::story::{
    CreateEntityRequest, CreateEventRequest, DeleteEventRequest, DeleteStoryRequest, DeleteWorldRequest, Entity, Event,
    EventConnection, GetEventRequest, GetTimelineRequest, ListEventsRequest, ShareRole, UpdateEventRequest, Visibility,
};
use prost_types::FieldMask;
use tonic::{Code, Status};

both_databases!(
    events_are_created_read_listed_updated_and_deleted,
    refuses_bad_events_naming_each_field,
    the_timeline_orders_by_year_then_story_position_grouped_by_era,
    deleting_events_stories_and_worlds_cleans_up_after_them,
    events_follow_their_worlds_access,
);

fn event(title: &str, year: i64, era: &str) -> Event {
    Event { title: title.into(), year, era: era.into(), ..Event::default() }
}

fn create(world_id: &str, event: Event) -> CreateEventRequest {
    CreateEventRequest { world_id: world_id.into(), event: Some(event), request_id: String::new() }
}

fn connect(target: &Event, relation: &str) -> EventConnection {
    EventConnection { target_event_id: target.id.clone(), relation: relation.into() }
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() })
}

async fn events_are_created_read_listed_updated_and_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let story = app.create_story(&alice, &world.id, "Saga", Visibility::Draft).await;
    let mut events = app.events();
    let token = alice.token.as_str();

    let founding = events.create_event(authed(create(&world.id, event("Founding", -300, "Old")), token)).await;
    let founding = founding.unwrap().into_inner();
    assert_eq!((founding.year, founding.era.as_str(), founding.story_id.as_deref()), (-300, "Old", None));
    let war = Event {
        story_id: Some(story.id.clone()),
        story_position: 4,
        description: "Long".into(),
        connections: vec![connect(&founding, "caused by")],
        ..event("War", 12, "New")
    };
    let war = events.create_event(authed(create(&world.id, war), token)).await.unwrap().into_inner();
    assert_eq!(war.story_id.as_deref(), Some(story.id.as_str()));
    assert_eq!(war.connections, vec![connect(&founding, "caused by")]);
    assert_eq!((war.story_position, war.world_id.as_str()), (4, world.id.as_str()));
    let read = events.get_event(authed(GetEventRequest { id: war.id.clone() }, token)).await.unwrap().into_inner();
    assert_eq!(read, war, "Get returns what Create returned");

    let list = |filter: &str| {
        authed(ListEventsRequest { world_id: world.id.clone(), filter: filter.into(), ..Default::default() }, token)
    };
    let all = events.list_events(list("")).await.unwrap().into_inner();
    assert_eq!((all.events.len(), all.total_size), (2, 2));
    let by_era = events.list_events(list(r#"era = "Old""#)).await.unwrap().into_inner();
    assert_eq!(by_era.events.into_iter().map(|e| e.id).collect::<Vec<_>>(), vec![founding.id.clone()]);
    let by_story = events.list_events(list(&format!(r#"story_id = "{}""#, story.id))).await.unwrap().into_inner();
    assert_eq!(by_story.events.into_iter().map(|e| e.id).collect::<Vec<_>>(), vec![war.id.clone()]);

    let changed =
        Event { id: war.id.clone(), year: 13, title: "ignored".into(), etag: war.etag.clone(), ..Event::default() };
    let update = UpdateEventRequest { event: Some(changed), update_mask: mask(&["year", "connections"]) };
    let updated = events.update_event(authed(update.clone(), token)).await.unwrap().into_inner();
    assert_eq!((updated.year, updated.title.as_str()), (13, "War"), "only the masked fields change");
    assert!(updated.connections.is_empty(), "connections in the mask, sent empty, are cleared");
    assert_eq!(updated.story_id, war.story_id, "the story is kept");
    expect_code(events.update_event(authed(update, token)).await, Code::Aborted, "ETAG_MISMATCH", "a stale etag");
    let unlink = UpdateEventRequest {
        event: Some(Event { id: war.id.clone(), ..Event::default() }),
        update_mask: mask(&["story_id"]),
    };
    let unlinked = events.update_event(authed(unlink, token)).await.unwrap().into_inner();
    assert_eq!(unlinked.story_id, None, "a masked, absent story_id detaches the event");

    let delete = |id: &str, etag: &str| authed(DeleteEventRequest { id: id.into(), etag: etag.into() }, token);
    expect_code(events.delete_event(delete(&war.id, "\"1\"")).await, Code::Aborted, "ETAG_MISMATCH", "stale etag");
    events.delete_event(delete(&war.id, &unlinked.etag)).await.expect("delete");
    expect_code(events.delete_event(delete(&war.id, "")).await, Code::NotFound, "NOT_FOUND", "deleting it again");
    expect_code(
        events.get_event(authed(GetEventRequest { id: war.id.clone() }, token)).await,
        Code::NotFound,
        "NOT_FOUND",
        "gone",
    );
    expect_invalid(events.get_event(authed(GetEventRequest { id: "?".into() }, token)).await, "id", "a bad id");
    expect_invalid(events.delete_event(delete("?", "")).await, "id", "a bad id");
}

async fn refuses_bad_events_naming_each_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let elsewhere = app.create_world(&alice, "Elsewhere", Visibility::Private).await;
    let token = alice.token.as_str();
    let mut events = app.events();
    let foreign_story = app.create_story(&alice, &elsewhere.id, "Far", Visibility::Draft).await;
    let foreign_event = events.create_event(authed(create(&elsewhere.id, event("Far", 1, "")), token)).await;
    let foreign_event = foreign_event.unwrap().into_inner();
    let foreign_entity = app
        .entities()
        .create_entity(authed(
            CreateEntityRequest {
                world_id: elsewhere.id.clone(),
                entity: Some(Entity { name: "Far".into(), ..Entity::default() }),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    let ok = || event("Fine", 1, "");
    let here = |e: Event| create(&world.id, e);
    let to = |id: &str, relation: &str| EventConnection { target_event_id: id.into(), relation: relation.into() };
    let cases = vec![
        BadInput {
            request: CreateEventRequest { world_id: world.id.clone(), event: None, request_id: String::new() },
            field: "event",
            why: "the event is required",
        },
        BadInput { request: create("bad", ok()), field: "world_id", why: "a bad world id" },
        BadInput { request: here(Event { title: String::new(), ..ok() }), field: "event.title", why: "no title" },
        BadInput {
            request: here(Event { title: "t".repeat(201), ..ok() }),
            field: "event.title",
            why: "a title of 201 characters",
        },
        BadInput {
            request: here(Event { description: "d".repeat(10_001), ..ok() }),
            field: "event.description",
            why: "a long description",
        },
        BadInput {
            request: here(Event { era: "e".repeat(101), ..ok() }),
            field: "event.era",
            why: "an era of 101 characters",
        },
        BadInput {
            request: here(Event { story_id: Some("nope".into()), ..ok() }),
            field: "event.story_id",
            why: "a story id that is no id",
        },
        BadInput {
            request: here(Event { connections: vec![to("bad", "x")], ..ok() }),
            field: "event.connections[0].target_event_id",
            why: "a connection to no id",
        },
        BadInput {
            request: here(Event { connections: vec![to(&unknown_id(), "r".repeat(101).as_str())], ..ok() }),
            field: "event.connections[0].relation",
            why: "a relation of 101 characters",
        },
        BadInput {
            request: here(Event { connections: (0..101).map(|_| to(&unknown_id(), "")).collect(), ..ok() }),
            field: "event.connections",
            why: "101 connections",
        },
    ];
    for BadInput { request, field, why } in cases {
        expect_invalid(events.create_event(authed(request, token)).await, field, why);
    }
    // Well-formed ids of nothing this world holds.
    let missing = vec![
        BadInput {
            request: here(Event { story_id: Some(foreign_story.id.clone()), ..ok() }),
            field: "event.story_id",
            why: "a story of another world",
        },
        BadInput {
            request: here(Event { entity_ids: vec![foreign_entity.id.clone()], ..ok() }),
            field: "event.entity_ids[0]",
            why: "an entity of another world",
        },
        BadInput {
            request: here(Event { location_ids: vec![unknown_id()], ..ok() }),
            field: "event.location_ids[0]",
            why: "a location that does not exist",
        },
        BadInput {
            request: here(Event { connections: vec![to(&foreign_event.id, "x")], ..ok() }),
            field: "event.connections[0].target_event_id",
            why: "a connection to another world",
        },
    ];
    for BadInput { request, field, why } in missing {
        expect_missing(events.create_event(authed(request, token)).await, field, why);
    }
    assert_eq!(app.count("events WHERE world_id = $1", &[&world.id]).await, 0, "no bad event was stored");

    let own = events.create_event(authed(here(ok()), token)).await.unwrap().into_inner();
    let loop_to_itself = UpdateEventRequest {
        event: Some(Event { id: own.id.clone(), connections: vec![to(&own.id, "is")], ..Event::default() }),
        update_mask: mask(&["connections"]),
    };
    expect_invalid(
        events.update_event(authed(loop_to_itself, token)).await,
        "event.connections[0].target_event_id",
        "an event connected to itself",
    );
    let bad_mask =
        UpdateEventRequest { event: Some(Event { id: own.id.clone(), ..ok() }), update_mask: mask(&["world_id"]) };
    expect_invalid(events.update_event(authed(bad_mask, token)).await, "update_mask", "moving it to another world");
    let list = ListEventsRequest { world_id: world.id.clone(), page_size: -1, ..Default::default() };
    expect_invalid(events.list_events(authed(list, token)).await, "page_size", "a negative page size");
    let list = ListEventsRequest { world_id: world.id.clone(), filter: "year = 1".into(), ..Default::default() };
    expect_invalid(events.list_events(authed(list, token)).await, "filter", "a field that cannot be filtered on");
    let missing = UpdateEventRequest { event: Some(Event { id: unknown_id(), ..ok() }), update_mask: None };
    expect_code(events.update_event(authed(missing, token)).await, Code::NotFound, "NOT_FOUND", "an unknown event");
    expect_code(
        events.get_timeline(authed(GetTimelineRequest { world_id: unknown_id() }, token)).await,
        Code::NotFound,
        "NOT_FOUND",
        "the timeline of an unknown world",
    );
    expect_invalid(
        events.get_timeline(authed(GetTimelineRequest { world_id: "x".into() }, token)).await,
        "world_id",
        "the timeline of a bad world id",
    );
}

async fn the_timeline_orders_by_year_then_story_position_grouped_by_era(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let mut events = app.events();
    // Created out of order on purpose.
    let specs = [
        ("Coronation", 10, 2, "Second Age"),
        ("Dawn", -500, 0, "First Age"),
        ("Flood", 10, 1, "Second Age"),
        ("Return", 900, 0, "First Age"),
        ("Peace", 11, 0, "Second Age"),
    ];
    for (title, year, position, era) in specs {
        let sent = Event { story_position: position, ..event(title, year, era) };
        events.create_event(authed(create(&world.id, sent), &alice.token)).await.unwrap();
    }
    let timeline = events
        .get_timeline(authed(GetTimelineRequest { world_id: world.id.clone() }, &alice.token))
        .await
        .unwrap()
        .into_inner();
    let shape: Vec<(String, Vec<String>)> =
        timeline.eras.into_iter().map(|era| (era.era, era.events.into_iter().map(|e| e.title).collect())).collect();
    let expected: Vec<(String, Vec<String>)> = [
        ("First Age", vec!["Dawn"]),
        ("Second Age", vec!["Flood", "Coronation", "Peace"]),
        ("First Age", vec!["Return"]),
    ]
    .into_iter()
    .map(|(era, titles)| (era.to_owned(), titles.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(shape, expected, "by year, then story position; consecutive events of an era grouped");
    let empty = app.create_world(&alice, "Empty", Visibility::Draft).await;
    let none = events.get_timeline(authed(GetTimelineRequest { world_id: empty.id }, &alice.token)).await.unwrap();
    assert!(none.into_inner().eras.is_empty(), "a world without events has an empty timeline");
}

async fn deleting_events_stories_and_worlds_cleans_up_after_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let token = alice.token.as_str();
    let story = app.create_story(&alice, &world.id, "Saga", Visibility::Draft).await;
    let mut events = app.events();
    let cause =
        events.create_event(authed(create(&world.id, event("Cause", 1, "")), token)).await.unwrap().into_inner();
    let effect = Event {
        connections: vec![connect(&cause, "follows")],
        story_id: Some(story.id.clone()),
        ..event("Effect", 2, "")
    };
    let effect = events.create_event(authed(create(&world.id, effect), token)).await.unwrap().into_inner();
    let after = Event { connections: vec![connect(&effect, "follows")], ..event("After", 3, "") };
    let after = events.create_event(authed(create(&world.id, after), token)).await.unwrap().into_inner();

    events.delete_event(authed(DeleteEventRequest { id: cause.id.clone(), etag: String::new() }, token)).await.unwrap();
    let effect_now = events.get_event(authed(GetEventRequest { id: effect.id.clone() }, token)).await.unwrap();
    assert!(effect_now.into_inner().connections.is_empty(), "connections to a deleted event go with it");

    app.stories()
        .delete_story(authed(DeleteStoryRequest { id: story.id.clone(), etag: String::new() }, token))
        .await
        .unwrap();
    let effect_now = events.get_event(authed(GetEventRequest { id: effect.id.clone() }, token)).await.unwrap();
    assert_eq!(effect_now.into_inner().story_id, None, "an event outlives its story, detached");

    app.worlds()
        .delete_world(authed(DeleteWorldRequest { id: world.id.clone(), etag: String::new() }, token))
        .await
        .unwrap();
    assert_eq!(app.count("events", &[]).await, 0, "a world's events go with it");
    assert_eq!(app.count("event_connections WHERE event_id = $1", &[&after.id]).await, 0, "and their connections");
}

/// A call's `result`, refused with `code` and the `ErrorInfo.reason` `want`; `why` says who tries what.
struct RefusedCall {
    result: Result<(), Status>,
    code: Code,
    want: &'static str,
    why: &'static str,
}

async fn events_follow_their_worlds_access(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.register("owner").await;
    let stranger = app.register("stranger").await;
    let private = app.create_world(&owner, "Private", Visibility::Private).await;
    let public = app.create_world(&owner, "Public", Visibility::Public).await;
    let reader = app.register_member(&owner, &private.id, "reader", ShareRole::Reader).await;
    let mut events = app.events();
    let hidden = events.create_event(authed(create(&private.id, event("Hidden", 1, "")), &owner.token)).await;
    let hidden = hidden.unwrap().into_inner();
    events.create_event(authed(create(&public.id, event("Open", 1, "")), &owner.token)).await.unwrap();

    events.get_event(authed(GetEventRequest { id: hidden.id.clone() }, &reader.token)).await.expect("a reader reads");
    let timeline = events.get_timeline(GetTimelineRequest { world_id: public.id.clone() }).await;
    assert_eq!(timeline.expect("anyone reads a public timeline").into_inner().eras.len(), 1);
    let cases = [
        RefusedCall {
            result: events
                .get_event(authed(GetEventRequest { id: hidden.id.clone() }, &stranger.token))
                .await
                .map(drop),
            code: Code::NotFound,
            want: "NOT_FOUND",
            why: "a stranger reads a private event",
        },
        RefusedCall {
            result: events.get_timeline(GetTimelineRequest { world_id: private.id.clone() }).await.map(drop),
            code: Code::NotFound,
            want: "NOT_FOUND",
            why: "an anonymous private timeline",
        },
        RefusedCall {
            result: events.create_event(authed(create(&private.id, event("X", 1, "")), &reader.token)).await.map(drop),
            code: Code::PermissionDenied,
            want: "PERMISSION_DENIED",
            why: "a reader creates",
        },
        RefusedCall {
            result: events.create_event(authed(create(&public.id, event("X", 1, "")), &stranger.token)).await.map(drop),
            code: Code::PermissionDenied,
            want: "PERMISSION_DENIED",
            why: "a stranger creates in a public world",
        },
        RefusedCall {
            result: events.create_event(create(&public.id, event("X", 1, ""))).await.map(drop),
            code: Code::Unauthenticated,
            want: "TOKEN_MISSING",
            why: "an anonymous caller creates",
        },
        RefusedCall {
            result: events
                .delete_event(authed(DeleteEventRequest { id: hidden.id.clone(), etag: String::new() }, &reader.token))
                .await
                .map(drop),
            code: Code::PermissionDenied,
            want: "PERMISSION_DENIED",
            why: "a reader deletes",
        },
    ];
    for RefusedCall { result, code, want, why } in cases {
        expect_code(result, code, want, why);
    }
}
