//! Every story resource through the gateway as its owner uses it: worlds, stories in
//! the world's order, entities, locations, events and the timeline; updates guarded by
//! etags, lists in pages, deletes, and a world's delete taking everything in it along.

use fabula_testkit::{
    Backend, both_databases,
    rest::{RestUser, id_of},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::stack;

both_databases!(
    a_world_and_its_stories_are_written_in_order_and_paged,
    entities_locations_and_events_make_a_timeline,
    deleting_a_world_deletes_everything_in_it,
);

/// The strings of a JSON list, empty when the field is absent (as empty lists are).
fn strings(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|items| items.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The ids of the resources of a JSON list.
fn ids(list: &Value) -> Vec<String> {
    list.as_array().map(|items| items.iter().map(id_of).collect()).unwrap_or_default()
}

/// The `nextPageToken` of a list, if there is a next page.
fn next_page(list: &Value) -> Option<String> {
    list["nextPageToken"].as_str().filter(|t| !t.is_empty()).map(str::to_owned)
}

/// Creates a resource under `path` and checks the answer: 201, its `Location`.
async fn create(user: &RestUser, path: &str, body: Value, location: &str) -> Value {
    let created = user.api.post(path, body).await;
    let location_header = created.headers.get("location").and_then(|l| l.to_str().ok()).map(str::to_owned);
    let created = created.expect(StatusCode::CREATED, path);
    assert_eq!(location_header, Some(format!("/v1/{location}/{}", id_of(&created))), "{path}: the Location");
    created
}

async fn a_world_and_its_stories_are_written_in_order_and_paged(backend: Backend) {
    let running = stack::start(backend).await;
    let ada = running.rest().register("ada").await;

    let world = json!({"name": "Eldoria", "worldType": "FANTASY", "visibility": "PRIVATE", "description": "Rivers."});
    let world = create(&ada, "/v1/worlds", world, "worlds").await;
    let world_id = id_of(&world);
    assert_eq!((&world["ownerId"], &world["worldType"]), (&json!(ada.id), &json!("FANTASY")), "{world}");
    assert_eq!(ada.api.get(&format!("/v1/worlds/{world_id}")).await.expect(StatusCode::OK, "get"), world);

    // An update names its fields and carries the etag it read; a stale etag is refused.
    let path = format!("/v1/worlds/{world_id}");
    let patch = |description: &str, etag: &Value| json!({"description": description, "etag": etag});
    let updated = ada.api.patch(&path, patch("Rivers and salt.", &world["etag"])).await.expect(StatusCode::OK, "edit");
    assert_eq!((&updated["description"], &updated["name"]), (&json!("Rivers and salt."), &json!("Eldoria")));
    assert_ne!(updated["etag"], world["etag"], "the etag changes with the world");
    let stale = ada.api.patch(&path, patch("Lost update.", &world["etag"])).await;
    stale.expect_error(StatusCode::CONFLICT, "ABORTED", "ETAG_MISMATCH", "an edit of a stale version");
    let kept = ada.api.get(&format!("/v1/worlds/{world_id}")).await.expect(StatusCode::OK, "get");
    assert_eq!(kept["description"], "Rivers and salt.", "the stale edit changed nothing");

    // Stories stand in the world's order, which an update can change.
    let stories = format!("/v1/worlds/{world_id}/stories");
    let mut written = Vec::new();
    for (title, order) in [("Dawn", 10), ("Noon", 20), ("Dusk", 30)] {
        let story = json!({"title": title, "content": format!("{title} falls."), "order": order});
        let story = create(&ada, &stories, story, "stories").await;
        assert_eq!((&story["worldId"], &story["order"]), (&json!(world_id), &json!(order.to_string())), "{story}");
        written.push(id_of(&story));
    }
    let [dawn, noon, dusk] = [&written[0], &written[1], &written[2]];
    let neighbors = ada.api.get(&format!("/v1/stories/{noon}/neighbors")).await.expect(StatusCode::OK, "neighbors");
    assert_eq!((id_of(&neighbors["previous"]), id_of(&neighbors["next"])), (dawn.clone(), dusk.clone()));
    let first = ada.api.get(&format!("/v1/stories/{dawn}/neighbors")).await.expect(StatusCode::OK, "neighbors");
    assert!(first.get("previous").is_none() && id_of(&first["next"]) == *noon, "the first has no previous: {first}");
    let moved = ada.api.patch(&format!("/v1/stories/{dusk}"), json!({"order": 15})).await;
    assert_eq!(moved.expect(StatusCode::OK, "move")["order"], "15");

    // Lists come in pages in that order, with the total.
    let page = ada.api.get(&format!("{stories}?pageSize=2")).await.expect(StatusCode::OK, "page 1");
    assert_eq!(ids(&page["stories"]), [dawn.clone(), dusk.clone()], "the world's order: {page}");
    assert_eq!(page["totalSize"], 3);
    let token = next_page(&page).expect("a second page");
    let page = ada.api.get(&format!("{stories}?pageSize=2&pageToken={token}")).await.expect(StatusCode::OK, "page 2");
    assert_eq!((ids(&page["stories"]), next_page(&page)), (vec![noon.clone()], None), "the last page: {page}");

    // MoveStory reorders in one step: to the end, then in front of another.
    ada.api.post(&format!("/v1/stories/{dawn}/move"), json!({})).await.expect(StatusCode::OK, "move to the end");
    let order = ids(&ada.api.get(&stories).await.expect(StatusCode::OK, "list")["stories"]);
    assert_eq!(order, [dusk.clone(), noon.clone(), dawn.clone()]);
    let back = json!({"beforeId": dusk});
    ada.api.post(&format!("/v1/stories/{dawn}/move"), back).await.expect(StatusCode::OK, "move in front");
    let order = ids(&ada.api.get(&stories).await.expect(StatusCode::OK, "list")["stories"]);
    assert_eq!(order, [dawn.clone(), dusk.clone(), noon.clone()]);

    // A story's etag guards its delete too; deleted, it is gone.
    let story = ada.api.get(&format!("/v1/stories/{noon}")).await.expect(StatusCode::OK, "get");
    let title = ada.api.patch(&format!("/v1/stories/{noon}"), json!({"title": "Midday"})).await;
    let title = title.expect(StatusCode::OK, "retitle");
    let stale = ada.api.delete(&format!("/v1/stories/{noon}?etag={}", story["etag"].as_str().unwrap_or(""))).await;
    stale.expect_error(StatusCode::CONFLICT, "ABORTED", "ETAG_MISMATCH", "a delete of a stale version");
    let current = title["etag"].as_str().expect("an etag");
    ada.api.delete(&format!("/v1/stories/{noon}?etag={current}")).await.expect(StatusCode::NO_CONTENT, "delete");
    let gone = ada.api.get(&format!("/v1/stories/{noon}")).await;
    gone.expect_error(StatusCode::NOT_FOUND, "NOT_FOUND", "NOT_FOUND", "a deleted story");
    let list = ada.api.get(&stories).await.expect(StatusCode::OK, "list");
    assert_eq!(ids(&list["stories"]), [dawn.clone(), dusk.clone()]);
    running.stop().await;
}

async fn entities_locations_and_events_make_a_timeline(backend: Backend) {
    let running = stack::start(backend).await;
    let ada = running.rest().register("ada").await;
    let world_id = id_of(&create(&ada, "/v1/worlds", json!({"name": "Eldoria"}), "worlds").await);
    let under = |kind: &str| format!("/v1/worlds/{world_id}/{kind}");
    let story = create(&ada, &under("stories"), json!({"title": "The Crossing"}), "stories").await;
    let story_id = id_of(&story);

    let mira = json!({"name": "Mira Vale", "entityType": "character", "attributes": {"eyes": "grey"}});
    let mira = create(&ada, &under("entities"), mira, "entities").await;
    assert_eq!((&mira["worldId"], &mira["attributes"]), (&json!(world_id), &json!({"eyes": "grey"})), "{mira}");
    let port = json!({"name": "Port Sorrow", "coordinates": {"x": 1.5, "y": -2.0}});
    let port = create(&ada, &under("locations"), port, "locations").await;
    assert_eq!(port["coordinates"], json!({"x": 1.5, "y": -2.0}), "{port}");
    let (mira_id, port_id) = (id_of(&mira), id_of(&port));
    let path = format!("/v1/entities/{mira_id}");
    let edited = ada.api.patch(&path, json!({"attributes": {"eyes": "grey", "ship": "Gull"}})).await;
    assert_eq!(edited.expect(StatusCode::OK, "edit")["attributes"], json!({"eyes": "grey", "ship": "Gull"}));

    let links = json!({"entityIds": [mira_id], "locationIds": [port_id]});
    let path = format!("/v1/stories/{story_id}");
    let linked = ada.api.patch(&path, links).await.expect(StatusCode::OK, "link");
    assert_eq!(
        (strings(&linked["entityIds"]), strings(&linked["locationIds"])),
        (vec![mira_id.clone()], vec![port_id])
    );

    let crossing = json!({"title": "The crossing", "year": 1204, "era": "Age of Embers", "storyId": story_id,
        "entityIds": [mira_id], "locationIds": [id_of(&port)], "storyPosition": 1});
    let crossing = id_of(&create(&ada, &under("events"), crossing, "events").await);
    let home = json!({"title": "The return", "year": "1210", "era": "Age of Embers",
        "connections": [{"targetEventId": crossing, "relation": "follows"}]});
    let home = create(&ada, &under("events"), home, "events").await;
    assert_eq!(home["connections"], json!([{"targetEventId": crossing, "relation": "follows"}]), "{home}");
    let founding = json!({"title": "The founding", "year": -30, "era": "First Age"});
    let founding = id_of(&create(&ada, &under("events"), founding, "events").await);

    let timeline = ada.api.get(&under("timeline")).await.expect(StatusCode::OK, "timeline");
    let eras: Vec<(Value, Vec<String>)> = timeline["eras"]
        .as_array()
        .expect("eras")
        .iter()
        .map(|era| (era["era"].clone(), ids(&era["events"])))
        .collect();
    let expected =
        [(json!("First Age"), vec![founding]), (json!("Age of Embers"), vec![crossing.clone(), id_of(&home)])];
    assert_eq!(eras, expected, "by year, grouped into eras: {timeline}");

    // An entity deleted is unlinked from the story and the events that named it.
    ada.api.delete(&format!("/v1/entities/{mira_id}")).await.expect(StatusCode::NO_CONTENT, "delete");
    let gone = ada.api.get(&format!("/v1/entities/{mira_id}")).await;
    gone.expect_error(StatusCode::NOT_FOUND, "NOT_FOUND", "NOT_FOUND", "a deleted entity");
    let story = ada.api.get(&format!("/v1/stories/{story_id}")).await.expect(StatusCode::OK, "story");
    assert!(strings(&story["entityIds"]).is_empty(), "unlinked from the story: {story}");
    let event = ada.api.get(&format!("/v1/events/{crossing}")).await.expect(StatusCode::OK, "event");
    assert!(strings(&event["entityIds"]).is_empty(), "unlinked from the event: {event}");
    assert_eq!(strings(&event["locationIds"]), [id_of(&port)], "the place stays linked: {event}");
    let entities = ada.api.get(&under("entities")).await.expect(StatusCode::OK, "entities");
    assert!(ids(&entities["entities"]).is_empty(), "{entities}");
    running.stop().await;
}

async fn deleting_a_world_deletes_everything_in_it(backend: Backend) {
    let running = stack::start(backend).await;
    let ada = running.rest().register("ada").await;
    let world_id = id_of(&create(&ada, "/v1/worlds", json!({"name": "Eldoria"}), "worlds").await);
    let other = id_of(&create(&ada, "/v1/worlds", json!({"name": "Elsewhere"}), "worlds").await);
    let under = |kind: &str| format!("/v1/worlds/{world_id}/{kind}");
    let children = [
        ("stories", create(&ada, &under("stories"), json!({"title": "One"}), "stories").await),
        ("entities", create(&ada, &under("entities"), json!({"name": "Mira"}), "entities").await),
        ("locations", create(&ada, &under("locations"), json!({"name": "Port"}), "locations").await),
        ("events", create(&ada, &under("events"), json!({"title": "War"}), "events").await),
    ];

    ada.api.delete(&format!("/v1/worlds/{world_id}")).await.expect(StatusCode::NO_CONTENT, "delete the world");

    let world = ada.api.get(&format!("/v1/worlds/{world_id}")).await;
    world.expect_error(StatusCode::NOT_FOUND, "NOT_FOUND", "NOT_FOUND", "the deleted world");
    for (kind, child) in &children {
        let gone = ada.api.get(&format!("/v1/{kind}/{}", id_of(child))).await;
        gone.expect_error(StatusCode::NOT_FOUND, "NOT_FOUND", "NOT_FOUND", &format!("{kind} of the deleted world"));
        let list = ada.api.get(&under(kind)).await;
        assert_eq!(list.status, StatusCode::NOT_FOUND, "the {kind} list of the deleted world: {}", list.body);
    }
    let worlds = ada.api.get("/v1/worlds").await.expect(StatusCode::OK, "list");
    assert_eq!(ids(&worlds["worlds"]), [other], "only the other world is left");
    running.stop().await;
}
