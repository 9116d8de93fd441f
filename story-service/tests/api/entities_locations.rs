//! EntityService and LocationService: every method's happy path and each error it
//! returns, and what deleting one does to the stories and events that link it.

use crate::common;

use std::collections::HashMap;

use common::*;
use fabula_contracts::pb::story::{
    Coordinates, CreateEntityRequest, CreateEventRequest, CreateLocationRequest, CreateStoryRequest,
    DeleteEntityRequest, DeleteLocationRequest, Entity, Event, GetEntityRequest, GetEventRequest, GetLocationRequest,
    GetStoryRequest, ListEntitiesRequest, ListLocationsRequest, Location, ShareRole, Story, UpdateEntityRequest,
    UpdateLocationRequest, Visibility,
};
use prost_types::FieldMask;
use tonic::Code;

both_databases!(
    entities_are_created_read_listed_updated_and_deleted,
    refuses_bad_entities_naming_each_field,
    locations_are_created_read_listed_updated_and_deleted,
    refuses_bad_locations_naming_each_field,
    children_follow_their_worlds_access,
    creates_with_a_request_id_are_idempotent,
    deleting_an_entity_or_location_unlinks_it,
    coordinates_can_follow_a_location_without_them,
);

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() })
}

fn entity(name: &str) -> Entity {
    Entity { name: name.into(), ..Entity::default() }
}

fn location(name: &str) -> Location {
    Location { name: name.into(), ..Location::default() }
}

fn new_entity(world_id: &str, entity: Entity) -> CreateEntityRequest {
    CreateEntityRequest { world_id: world_id.into(), entity: Some(entity), request_id: String::new() }
}

fn new_location(world_id: &str, location: Location) -> CreateLocationRequest {
    CreateLocationRequest { world_id: world_id.into(), location: Some(location), request_id: String::new() }
}

fn attributes(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

async fn entities_are_created_read_listed_updated_and_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let mut entities = app.entities();
    let sent = Entity {
        entity_type: "faction".into(),
        description: "Grey cloaks".into(),
        attributes: attributes(&[("motto", "Stay hidden"), ("size", "12")]),
        ..entity("  Rangers ")
    };
    let rangers = entities.create_entity(authed(new_entity(&world.id, sent), &alice.token)).await.unwrap().into_inner();
    assert_eq!((rangers.name.as_str(), rangers.entity_type.as_str()), ("Rangers", "faction"));
    assert_eq!(rangers.attributes, attributes(&[("motto", "Stay hidden"), ("size", "12")]));
    assert_eq!(rangers.world_id, world.id);
    assert!(!rangers.etag.is_empty() && rangers.create_time.is_some());
    let hero = entities.create_entity(authed(new_entity(&world.id, entity("Hero")), &alice.token)).await.unwrap();
    let hero = hero.into_inner();
    assert_eq!(hero.entity_type, "character", "the default type");

    let read = entities.get_entity(authed(GetEntityRequest { id: rangers.id.clone() }, &alice.token)).await.unwrap();
    assert_eq!(read.into_inner(), rangers);
    let list = |filter: &str| {
        authed(
            ListEntitiesRequest { world_id: world.id.clone(), filter: filter.into(), ..Default::default() },
            &alice.token,
        )
    };
    let names = |r: Vec<Entity>| r.into_iter().map(|e| e.name).collect::<Vec<_>>();
    assert_eq!(names(entities.list_entities(list("")).await.unwrap().into_inner().entities), ["Rangers", "Hero"]);
    let characters = entities.list_entities(list("entity_type = character")).await.unwrap().into_inner();
    assert_eq!((names(characters.entities), characters.total_size), (vec!["Hero".to_owned()], 1));
    let by_name = entities.list_entities(list(r#"name = "Rangers""#)).await.unwrap().into_inner();
    assert_eq!(names(by_name.entities), ["Rangers"]);

    let change = Entity {
        id: rangers.id.clone(),
        attributes: attributes(&[("motto", "Be seen")]),
        description: "ignored".into(),
        etag: rangers.etag.clone(),
        ..Entity::default()
    };
    let update = UpdateEntityRequest { entity: Some(change), update_mask: mask(&["attributes"]) };
    let updated = entities.update_entity(authed(update.clone(), &alice.token)).await.unwrap().into_inner();
    assert_eq!(updated.attributes, attributes(&[("motto", "Be seen")]), "attributes are replaced as a whole");
    assert_eq!(updated.description, "Grey cloaks", "unmasked fields are kept");
    expect_code(
        entities.update_entity(authed(update, &alice.token)).await,
        Code::Aborted,
        "ETAG_MISMATCH",
        "the same etag a second time",
    );
    let populated = Entity { id: hero.id.clone(), description: "Brave".into(), ..Entity::default() };
    let updated = entities
        .update_entity(authed(UpdateEntityRequest { entity: Some(populated), update_mask: None }, &alice.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.name.as_str(), updated.description.as_str()), ("Hero", "Brave"), "no mask: populated only");

    let delete = |id: &str, etag: &str| authed(DeleteEntityRequest { id: id.into(), etag: etag.into() }, &alice.token);
    expect_code(entities.delete_entity(delete(&hero.id, "\"9\"")).await, Code::Aborted, "ETAG_MISMATCH", "stale");
    entities.delete_entity(delete(&hero.id, &updated.etag)).await.expect("delete with the current etag");
    expect_code(
        entities.get_entity(authed(GetEntityRequest { id: hero.id.clone() }, &alice.token)).await,
        Code::NotFound,
        "NOT_FOUND",
        "a deleted entity",
    );
    expect_code(entities.delete_entity(delete(&hero.id, "")).await, Code::NotFound, "NOT_FOUND", "deleting it again");
    expect_invalid(entities.delete_entity(delete("x", "")).await, "id", "a bad id");
    expect_invalid(
        entities.get_entity(authed(GetEntityRequest { id: "x".into() }, &alice.token)).await,
        "id",
        "a bad id",
    );
}

async fn refuses_bad_entities_naming_each_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let mut entities = app.entities();
    let ok = || entity("Fine");
    let create = |e: Entity| new_entity(&world.id, e);
    let many: HashMap<String, String> = (0..51).map(|i| (format!("k{i}"), "v".into())).collect();
    let cases = vec![
        BadInput {
            request: CreateEntityRequest { world_id: world.id.clone(), entity: None, request_id: String::new() },
            field: "entity",
            why: "the entity is required",
        },
        BadInput { request: new_entity("bad", ok()), field: "world_id", why: "a bad world id" },
        BadInput { request: create(Entity { name: String::new(), ..ok() }), field: "entity.name", why: "no name" },
        BadInput {
            request: create(Entity { name: "n".repeat(201), ..ok() }),
            field: "entity.name",
            why: "a name of 201 characters",
        },
        BadInput {
            request: create(Entity { entity_type: "t".repeat(51), ..ok() }),
            field: "entity.entity_type",
            why: "a type of 51 characters",
        },
        BadInput {
            request: create(Entity { description: "d".repeat(10_001), ..ok() }),
            field: "entity.description",
            why: "a long description",
        },
        BadInput {
            request: create(Entity { attributes: many, ..ok() }),
            field: "entity.attributes",
            why: "51 attributes",
        },
        BadInput {
            request: create(Entity { attributes: attributes(&[(" ", "v")]), ..ok() }),
            field: "entity.attributes",
            why: "a blank key",
        },
        BadInput {
            request: create(Entity { attributes: attributes(&[(&"k".repeat(101), "v")]), ..ok() }),
            field: "entity.attributes",
            why: "a key of 101 characters",
        },
        BadInput {
            request: create(Entity { attributes: attributes(&[("k", &"v".repeat(1_001))]), ..ok() }),
            field: "entity.attributes[\"k\"]",
            why: "a value of 1 001 characters",
        },
        BadInput {
            request: CreateEntityRequest { request_id: "r".repeat(101), ..create(ok()) },
            field: "request_id",
            why: "a long request id",
        },
    ];
    for BadInput { request, field, why } in cases {
        expect_invalid(entities.create_entity(authed(request, &alice.token)).await, field, why);
    }
    assert_eq!(app.count("entities", &[]).await, 0);

    let created = entities.create_entity(authed(create(ok()), &alice.token)).await.unwrap().into_inner();
    let updates = vec![
        BadInput {
            request: UpdateEntityRequest { entity: None, update_mask: None },
            field: "entity",
            why: "the entity is required",
        },
        BadInput {
            request: UpdateEntityRequest { entity: Some(Entity { id: "x".into(), ..ok() }), update_mask: None },
            field: "entity.id",
            why: "a bad id",
        },
        BadInput {
            request: UpdateEntityRequest {
                entity: Some(Entity { id: created.id.clone(), ..ok() }),
                update_mask: mask(&["world_id"]),
            },
            field: "update_mask",
            why: "moving it to another world",
        },
        BadInput {
            request: UpdateEntityRequest {
                entity: Some(Entity { id: created.id.clone(), ..Entity::default() }),
                update_mask: mask(&["name"]),
            },
            field: "entity.name",
            why: "an empty name in the mask",
        },
    ];
    for BadInput { request, field, why } in updates {
        expect_invalid(entities.update_entity(authed(request, &alice.token)).await, field, why);
    }
    let list = |page_size: i32, page_token: &str, filter: &str| {
        authed(
            ListEntitiesRequest {
                world_id: world.id.clone(),
                page_size,
                page_token: page_token.into(),
                filter: filter.into(),
            },
            &alice.token,
        )
    };
    expect_invalid(entities.list_entities(list(-3, "", "")).await, "page_size", "a negative page size");
    expect_invalid(entities.list_entities(list(0, "", "colour = red")).await, "filter", "an unknown filter field");
    entities.create_entity(authed(create(entity("Second")), &alice.token)).await.unwrap();
    let first = entities.list_entities(list(1, "", "")).await.unwrap().into_inner();
    expect_invalid(
        entities.list_entities(list(1, &first.next_page_token, "entity_type = character")).await,
        "page_token",
        "a page token reused with another filter",
    );
    let missing = UpdateEntityRequest { entity: Some(Entity { id: unknown_id(), ..ok() }), update_mask: None };
    expect_code(
        entities.update_entity(authed(missing, &alice.token)).await,
        Code::NotFound,
        "NOT_FOUND",
        "an unknown entity",
    );
}

async fn locations_are_created_read_listed_updated_and_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let mut locations = app.locations();
    let mapped = Location { coordinates: Some(Coordinates { x: 12.5, y: -3.0 }), ..location("Harbour") };
    let harbour = locations.create_location(authed(new_location(&world.id, mapped), &alice.token)).await.unwrap();
    let harbour = harbour.into_inner();
    assert_eq!(harbour.coordinates, Some(Coordinates { x: 12.5, y: -3.0 }));
    let cave = locations.create_location(authed(new_location(&world.id, location("Cave")), &alice.token)).await;
    let cave = cave.unwrap().into_inner();
    assert_eq!(cave.coordinates, None, "a place need not be on the map");

    let read = locations.get_location(authed(GetLocationRequest { id: harbour.id.clone() }, &alice.token)).await;
    assert_eq!(read.unwrap().into_inner(), harbour);
    let list = |filter: &str| {
        authed(
            ListLocationsRequest { world_id: world.id.clone(), filter: filter.into(), ..Default::default() },
            &alice.token,
        )
    };
    let all = locations.list_locations(list("")).await.unwrap().into_inner();
    assert_eq!(all.locations.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["Harbour", "Cave"]);
    let by_name = locations.list_locations(list("name = Cave")).await.unwrap().into_inner();
    assert_eq!((by_name.locations.len(), by_name.total_size), (1, 1));

    let off_the_map = UpdateLocationRequest {
        location: Some(Location { id: harbour.id.clone(), etag: harbour.etag.clone(), ..Location::default() }),
        update_mask: mask(&["coordinates"]),
    };
    let updated = locations.update_location(authed(off_the_map.clone(), &alice.token)).await.unwrap().into_inner();
    assert_eq!(updated.coordinates, None, "a masked, absent coordinates field takes the place off the map");
    assert_eq!(updated.name, "Harbour");
    expect_code(
        locations.update_location(authed(off_the_map, &alice.token)).await,
        Code::Aborted,
        "ETAG_MISMATCH",
        "a stale etag",
    );
    let moved = UpdateLocationRequest {
        location: Some(Location {
            id: cave.id.clone(),
            coordinates: Some(Coordinates { x: 1.0, y: 2.0 }),
            ..Location::default()
        }),
        update_mask: None,
    };
    let moved = locations.update_location(authed(moved, &alice.token)).await.unwrap().into_inner();
    assert_eq!((moved.name.as_str(), moved.coordinates), ("Cave", Some(Coordinates { x: 1.0, y: 2.0 })));

    let delete =
        |id: &str, etag: &str| authed(DeleteLocationRequest { id: id.into(), etag: etag.into() }, &alice.token);
    expect_code(locations.delete_location(delete(&cave.id, "\"1\"")).await, Code::Aborted, "ETAG_MISMATCH", "stale");
    locations.delete_location(delete(&cave.id, &moved.etag)).await.expect("delete");
    expect_code(
        locations.delete_location(delete(&cave.id, "")).await,
        Code::NotFound,
        "NOT_FOUND",
        "deleting it again",
    );
    expect_code(
        locations.get_location(authed(GetLocationRequest { id: cave.id.clone() }, &alice.token)).await,
        Code::NotFound,
        "NOT_FOUND",
        "a deleted location",
    );
}

async fn refuses_bad_locations_naming_each_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let mut locations = app.locations();
    let ok = || location("Fine");
    let create = |l: Location| new_location(&world.id, l);
    let cases = vec![
        BadInput {
            request: CreateLocationRequest { world_id: world.id.clone(), location: None, request_id: String::new() },
            field: "location",
            why: "the location is required",
        },
        BadInput { request: new_location("", ok()), field: "world_id", why: "no world id" },
        BadInput {
            request: create(Location { name: " ".into(), ..ok() }),
            field: "location.name",
            why: "a blank name",
        },
        BadInput {
            request: create(Location { name: "n".repeat(201), ..ok() }),
            field: "location.name",
            why: "a name of 201 characters",
        },
        BadInput {
            request: create(Location { description: "d".repeat(10_001), ..ok() }),
            field: "location.description",
            why: "a long description",
        },
        BadInput {
            request: create(Location { coordinates: Some(Coordinates { x: f64::NAN, y: 0.0 }), ..ok() }),
            field: "location.coordinates.x",
            why: "x is NaN",
        },
        BadInput {
            request: create(Location { coordinates: Some(Coordinates { x: 0.0, y: f64::INFINITY }), ..ok() }),
            field: "location.coordinates.y",
            why: "y is infinite",
        },
    ];
    for BadInput { request, field, why } in cases {
        expect_invalid(locations.create_location(authed(request, &alice.token)).await, field, why);
    }
    assert_eq!(app.count("locations", &[]).await, 0);
    let list = ListLocationsRequest { world_id: world.id.clone(), page_size: -1, ..Default::default() };
    expect_invalid(locations.list_locations(authed(list, &alice.token)).await, "page_size", "a negative page size");
    let list = ListLocationsRequest { world_id: world.id.clone(), filter: "x = 1".into(), ..Default::default() };
    expect_invalid(locations.list_locations(authed(list, &alice.token)).await, "filter", "an unknown filter field");
    expect_code(
        locations.create_location(authed(new_location(&unknown_id(), ok()), &alice.token)).await,
        Code::NotFound,
        "NOT_FOUND",
        "a world that does not exist",
    );
}

async fn children_follow_their_worlds_access(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.register("owner").await;
    let co_author = app.register("co_author").await;
    let reader = app.register("reader").await;
    let stranger = app.register("stranger").await;
    let private = app.create_world(&owner, "Private", Visibility::Private).await;
    let public = app.create_world(&owner, "Public", Visibility::Public).await;
    for world in [&private, &public] {
        app.share(&owner, &world.id, &co_author, ShareRole::CoAuthor).await;
        app.share(&owner, &world.id, &reader, ShareRole::Reader).await;
    }
    let mut entities = app.entities();
    let mut locations = app.locations();
    let hidden = entities.create_entity(authed(new_entity(&private.id, entity("Hidden")), &owner.token)).await;
    let hidden = hidden.unwrap().into_inner();
    let open = locations.create_location(authed(new_location(&public.id, location("Open")), &co_author.token)).await;
    let open = open.expect("a co-author adds a location").into_inner();

    let get_hidden = |token: Option<&str>| as_caller(GetEntityRequest { id: hidden.id.clone() }, token);
    entities.get_entity(get_hidden(Some(&reader.token))).await.expect("a reader reads a private world's entity");
    expect_code(
        entities.get_entity(get_hidden(Some(&stranger.token))).await,
        Code::NotFound,
        "NOT_FOUND",
        "stranger, private",
    );
    expect_code(entities.get_entity(get_hidden(None)).await, Code::NotFound, "NOT_FOUND", "anonymous, private world");
    let list_hidden = |token: Option<&str>| {
        as_caller(ListEntitiesRequest { world_id: private.id.clone(), ..Default::default() }, token)
    };
    expect_code(
        entities.list_entities(list_hidden(Some(&stranger.token))).await,
        Code::NotFound,
        "NOT_FOUND",
        "stranger lists",
    );
    locations
        .get_location(GetLocationRequest { id: open.id.clone() })
        .await
        .expect("anyone reads a public world's location");

    let rename = |token: Option<&str>| {
        as_caller(
            UpdateLocationRequest {
                location: Some(Location { id: open.id.clone(), name: "Renamed".into(), ..Location::default() }),
                update_mask: mask(&["name"]),
            },
            token,
        )
    };
    expect_code(
        locations.update_location(rename(Some(&reader.token))).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
        "reader edits",
    );
    expect_code(
        locations.update_location(rename(Some(&stranger.token))).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
        "stranger edits",
    );
    expect_code(
        locations.update_location(rename(None)).await,
        Code::Unauthenticated,
        "TOKEN_MISSING",
        "anonymous edits",
    );
    locations.update_location(rename(Some(&co_author.token))).await.expect("a co-author edits");
    let creates = [
        Refusal {
            request: new_entity(&private.id, entity("X")),
            token: Some(&reader.token),
            code: Code::PermissionDenied,
            want: "PERMISSION_DENIED",
            why: "a reader creates",
        },
        Refusal {
            request: new_entity(&private.id, entity("X")),
            token: Some(&stranger.token),
            code: Code::NotFound,
            want: "NOT_FOUND",
            why: "a stranger creates in a private world",
        },
        Refusal {
            request: new_entity(&public.id, entity("X")),
            token: Some(&stranger.token),
            code: Code::PermissionDenied,
            want: "PERMISSION_DENIED",
            why: "a stranger creates in a public world",
        },
        Refusal {
            request: new_entity(&public.id, entity("X")),
            token: None,
            code: Code::Unauthenticated,
            want: "TOKEN_MISSING",
            why: "an anonymous caller creates",
        },
    ];
    for Refusal { request, token, code, want, why } in creates {
        expect_code(entities.create_entity(as_caller(request, token)).await, code, want, why);
    }
    let delete = |token: &str| authed(DeleteEntityRequest { id: hidden.id.clone(), etag: String::new() }, token);
    expect_code(
        entities.delete_entity(delete(&reader.token)).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
        "a reader deletes",
    );
    expect_code(
        entities.delete_entity(delete(&stranger.token)).await,
        Code::NotFound,
        "NOT_FOUND",
        "a stranger deletes",
    );
    entities.delete_entity(delete(&co_author.token)).await.expect("a co-author deletes");
}

async fn creates_with_a_request_id_are_idempotent(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let entity_request =
        || CreateEntityRequest { request_id: "entity-1".into(), ..new_entity(&world.id, entity("Once")) };
    let first = app.entities().create_entity(authed(entity_request(), &alice.token)).await.unwrap().into_inner();
    let again = app.entities().create_entity(authed(entity_request(), &alice.token)).await.unwrap().into_inner();
    assert_eq!(again.id, first.id);
    assert_eq!(app.count("entities", &[]).await, 1, "one entity");

    let location_request =
        || CreateLocationRequest { request_id: "location-1".into(), ..new_location(&world.id, location("Once")) };
    let first = app.locations().create_location(authed(location_request(), &alice.token)).await.unwrap();
    let again = app.locations().create_location(authed(location_request(), &alice.token)).await.unwrap();
    assert_eq!(again.into_inner().id, first.into_inner().id);
    assert_eq!(app.count("locations", &[]).await, 1, "one location");

    let reused = CreateLocationRequest { request_id: "entity-1".into(), ..new_location(&world.id, location("Other")) };
    expect_code(
        app.locations().create_location(authed(reused, &alice.token)).await,
        Code::AlreadyExists,
        "REQUEST_ID_REUSED",
        "a request id that already created an entity",
    );
}

async fn deleting_an_entity_or_location_unlinks_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let token = alice.token.as_str();
    let hero = app.entities().create_entity(authed(new_entity(&world.id, entity("Hero")), token)).await.unwrap();
    let hero = hero.into_inner();
    let sidekick = app.entities().create_entity(authed(new_entity(&world.id, entity("Sidekick")), token)).await;
    let sidekick = sidekick.unwrap().into_inner();
    let cave = app.locations().create_location(authed(new_location(&world.id, location("Cave")), token)).await;
    let cave = cave.unwrap().into_inner();
    let story = Story {
        title: "Linked".into(),
        entity_ids: vec![hero.id.clone(), sidekick.id.clone()],
        location_ids: vec![cave.id.clone()],
        ..Story::default()
    };
    let story = CreateStoryRequest { world_id: world.id.clone(), story: Some(story), request_id: String::new() };
    let story = app.stories().create_story(authed(story, token)).await.unwrap().into_inner();
    assert_eq!(story.entity_ids, vec![hero.id.clone(), sidekick.id.clone()], "links keep their order");
    let event = Event {
        title: "Battle".into(),
        entity_ids: vec![hero.id.clone()],
        location_ids: vec![cave.id.clone()],
        ..Event::default()
    };
    let event = CreateEventRequest { world_id: world.id.clone(), event: Some(event), request_id: String::new() };
    let event = app.events().create_event(authed(event, token)).await.unwrap().into_inner();

    app.entities()
        .delete_entity(authed(DeleteEntityRequest { id: hero.id.clone(), etag: String::new() }, token))
        .await
        .unwrap();
    app.locations()
        .delete_location(authed(DeleteLocationRequest { id: cave.id.clone(), etag: String::new() }, token))
        .await
        .unwrap();

    let story = app.stories().get_story(authed(GetStoryRequest { id: story.id.clone() }, token)).await.unwrap();
    let story = story.into_inner();
    assert_eq!(story.entity_ids, vec![sidekick.id.clone()], "the deleted entity left the story");
    assert!(story.location_ids.is_empty(), "the deleted location left the story");
    let event = app.events().get_event(authed(GetEventRequest { id: event.id.clone() }, token)).await.unwrap();
    let event = event.into_inner();
    assert!(event.entity_ids.is_empty() && event.location_ids.is_empty(), "and the event: {event:?}");
    let links = app.count("story_entities WHERE target_id = $1", &[&hero.id]).await
        + app.count("event_entities WHERE target_id = $1", &[&hero.id]).await
        + app.count("story_locations WHERE target_id = $1", &[&cave.id]).await
        + app.count("event_locations WHERE target_id = $1", &[&cave.id]).await;
    assert_eq!(links, 0, "no link rows are left behind");
}

/// On one database connection, a write without coordinates (NULL x and y) comes
/// first, then writes with them: the statements must not remember NULL's type.
async fn coordinates_can_follow_a_location_without_them(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.database_connections = 1).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let mut locations = app.locations();
    let create = |location: Location| authed(new_location(&world.id, location), &alice.token);
    let at = |x: f64, y: f64| Some(Coordinates { x, y });

    locations.create_location(create(location("Nowhere"))).await.expect("a location off the map");
    let somewhere = locations
        .create_location(create(Location { coordinates: at(1.5, 2.5), ..location("Somewhere") }))
        .await
        .expect("a location on the map, after one without coordinates")
        .into_inner();
    assert_eq!(somewhere.coordinates, at(1.5, 2.5));

    let clear = UpdateLocationRequest {
        location: Some(Location { id: somewhere.id.clone(), ..Location::default() }),
        update_mask: mask(&["coordinates"]),
    };
    locations.update_location(authed(clear, &alice.token)).await.expect("take it off the map");
    let put_back = UpdateLocationRequest {
        location: Some(Location { id: somewhere.id.clone(), coordinates: at(-4.0, 8.25), ..Location::default() }),
        update_mask: mask(&["coordinates"]),
    };
    let back = locations
        .update_location(authed(put_back, &alice.token))
        .await
        .expect("put it back on the map, after an update without coordinates")
        .into_inner();
    assert_eq!(back.coordinates, at(-4.0, 8.25));
}
