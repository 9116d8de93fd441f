//! Names, titles and passwords as issue 11 wants them: no control characters (C0,
//! DEL, C1), no bidirectional overrides or isolates, not only invisible characters,
//! and no password of white space alone. Checked on every resource that has a name,
//! and with a row count, so that nothing refused is stored.

use crate::common;

use common::*;
use fabula_contracts::pb::{
    accounts::RegisterRequest,
    story::{
        CreateEntityRequest, CreateEventRequest, CreateLocationRequest, CreateStoryRequest, Entity, Event, Location,
        Story, Visibility,
    },
};

both_databases!(names_refuse_control_direction_and_invisible_characters, passwords_of_white_space_are_refused);

/// A name that must be refused, and why.
struct BadName {
    name: &'static str,
    why: &'static str,
}

const BAD_NAMES: &[BadName] = &[
    BadName { name: "Line\nbreak", why: "a newline (C0)" },
    BadName { name: "Tab\there", why: "a tab (C0)" },
    BadName { name: "Bell\u{7}", why: "BEL (C0)" },
    BadName { name: "Del\u{7f}", why: "DEL" },
    BadName { name: "Next\u{85}line", why: "NEL (C1)" },
    BadName { name: "Csi\u{9b}", why: "CSI (C1)" },
    BadName { name: "Line\u{2028}separator", why: "a line separator" },
    BadName { name: "evil\u{202e}txt.exe", why: "a right-to-left override" },
    BadName { name: "\u{202a}embedded", why: "a left-to-right embedding" },
    BadName { name: "\u{2066}isolated\u{2069}", why: "an isolate" },
    BadName { name: "\u{200b}\u{200b}\u{200b}", why: "zero-width spaces only" },
    BadName { name: "\u{200b} \u{feff}\u{2060}", why: "invisible characters and a space only" },
    BadName { name: "\u{3164}", why: "a Hangul filler only" },
    BadName { name: "   ", why: "spaces only" },
];

async fn names_refuse_control_direction_and_invisible_characters(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Eldoria", Visibility::Private).await;
    let mut worlds = app.worlds();
    let mut stories = app.stories();
    let mut entities = app.entities();
    let mut locations = app.locations();
    let mut events = app.events();
    for bad in BAD_NAMES {
        let why = bad.why;
        let created = worlds.create_world(authed(create_world(bad.name), &alice.token)).await;
        expect_invalid(created, "world.name", &format!("a world named with {why}"));
        let story = Story { title: bad.name.into(), ..Story::default() };
        let request = CreateStoryRequest { world_id: world.id.clone(), story: Some(story), request_id: String::new() };
        expect_invalid(stories.create_story(authed(request, &alice.token)).await, "story.title", why);
        let entity = Entity { name: bad.name.into(), ..Entity::default() };
        let request =
            CreateEntityRequest { world_id: world.id.clone(), entity: Some(entity), request_id: String::new() };
        expect_invalid(entities.create_entity(authed(request, &alice.token)).await, "entity.name", why);
        let location = Location { name: bad.name.into(), ..Location::default() };
        let request =
            CreateLocationRequest { world_id: world.id.clone(), location: Some(location), request_id: String::new() };
        expect_invalid(locations.create_location(authed(request, &alice.token)).await, "location.name", why);
        let event = Event { title: bad.name.into(), ..Event::default() };
        let request = CreateEventRequest { world_id: world.id.clone(), event: Some(event), request_id: String::new() };
        expect_invalid(events.create_event(authed(request, &alice.token)).await, "event.title", why);
    }
    assert_eq!(app.count("worlds", &[]).await, 1, "only the good world was stored");
    for table in ["stories", "entities", "locations", "events"] {
        assert_eq!(app.count(table, &[]).await, 0, "no {table} row was stored");
    }
    // Visible text with a joiner inside, and surrounding spaces, is a name.
    let good = worlds.create_world(authed(create_world("  Ae\u{200d}ril  "), &alice.token)).await.expect("a good name");
    assert_eq!(good.into_inner().name, "Ae\u{200d}ril", "surrounding spaces are removed");
}

fn create_world(name: &str) -> fabula_contracts::pb::story::CreateWorldRequest {
    let world = fabula_contracts::pb::story::World { name: name.into(), ..Default::default() };
    fabula_contracts::pb::story::CreateWorldRequest { world: Some(world), request_id: String::new() }
}

async fn passwords_of_white_space_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut accounts = app.accounts();
    let register = |password: &str| RegisterRequest {
        username: "blank".into(),
        email: "blank@example.test".into(),
        password: password.into(),
    };
    let cases = [
        BadInput { request: register("            "), field: "password", why: "spaces" },
        BadInput {
            request: register("\u{3000}\u{a0}\t\n          "),
            field: "password",
            why: "white space of several kinds",
        },
    ];
    for BadInput { request, field, why } in cases {
        expect_invalid(accounts.register(request).await, field, why);
    }
    assert_eq!(app.count("users", &[]).await, 1, "only the administrator exists");
}
