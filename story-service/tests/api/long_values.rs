//! A value of 100 000 characters in any field a client fills is refused with a short
//! message: an error that quoted it whole outgrew the response headers that carry it,
//! and the client saw RESOURCE_EXHAUSTED ("metadata size exceeds hard limit") instead.
//! Values are quoted shortened, with their length; some are not quoted at all.

use crate::common;

use std::collections::HashMap;

use common::*;
use fabula_contracts::pb::{
    accounts::{LoginRequest, RegisterRequest},
    story::{
        CreateEntityRequest, CreateStoryRequest, CreateWorldRequest, DeleteWorldRequest, Entity, GetWorldRequest,
        ListStoriesRequest, ListWorldsRequest, ShareRole, ShareWorldRequest, Story, UpdateWorldRequest, Visibility,
        World,
    },
};
use prost_types::FieldMask;
use tonic::{Code, Status};

both_databases!(a_value_of_100_000_characters_is_refused_with_a_short_message);

/// How long a client's value is.
const LENGTH: usize = 100_000;
/// The most bytes an error's message and details may take here: far below the 8 KiB
/// where gRPC's C core starts refusing response metadata.
const SHORT: usize = 2048;

/// One call with a long value, and how it is refused.
struct Case {
    what: &'static str,
    answer: Result<(), Status>,
    code: Code,
    /// Its `ErrorInfo.reason`.
    reason: &'static str,
    /// The field its `BadRequest` names, for INVALID_ARGUMENT.
    field: &'static str,
    /// Words the message holds: the value's shortened quote with its length, or what
    /// is said instead when the value is not quoted.
    says: &'static str,
}

const QUOTED: &str = "… (100000 characters)";

async fn a_value_of_100_000_characters_is_refused_with_a_short_message(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let long = "x".repeat(LENGTH);
    let token = alice.token.as_str();
    let update_world = |world: World, paths: Vec<String>| UpdateWorldRequest {
        world: Some(world),
        update_mask: Some(FieldMask { paths }),
    };
    let cases = [
        Case {
            what: "a world id",
            answer: app.worlds().get_world(authed(GetWorldRequest { id: long.clone() }, token)).await.map(drop),
            code: Code::InvalidArgument,
            reason: "INVALID_ARGUMENT",
            field: "id",
            says: QUOTED,
        },
        Case {
            what: "a filter on an unknown field of that name",
            answer: {
                let request = ListWorldsRequest { filter: format!("{long} = x"), ..Default::default() };
                app.worlds().list_worlds(authed(request, token)).await.map(drop)
            },
            code: Code::InvalidArgument,
            reason: "INVALID_ARGUMENT",
            field: "filter",
            says: "at most 1000 characters, not",
        },
        Case {
            what: "a filter value that is no visibility",
            answer: {
                let request = ListWorldsRequest { filter: format!("visibility = {long}"), ..Default::default() };
                app.worlds().list_worlds(authed(request, token)).await.map(drop)
            },
            code: Code::InvalidArgument,
            reason: "INVALID_ARGUMENT",
            field: "filter",
            says: "at most 1000 characters, not",
        },
        Case {
            what: "a filter that is no term",
            answer: {
                let request =
                    ListStoriesRequest { world_id: world.id.clone(), filter: long.clone(), ..Default::default() };
                app.stories().list_stories(authed(request, token)).await.map(drop)
            },
            code: Code::InvalidArgument,
            reason: "INVALID_ARGUMENT",
            field: "filter",
            says: "at most 1000 characters, not",
        },
        Case {
            what: "a page token",
            answer: {
                let request =
                    ListStoriesRequest { world_id: world.id.clone(), page_token: long.clone(), ..Default::default() };
                app.stories().list_stories(authed(request, token)).await.map(drop)
            },
            code: Code::InvalidArgument,
            reason: "INVALID_ARGUMENT",
            field: "page_token",
            says: "at most 2048 characters, not 100000",
        },
        Case {
            what: "an update mask path",
            answer: {
                let request = update_world(World { id: world.id.clone(), ..World::default() }, vec![long.clone()]);
                app.worlds().update_world(authed(request, token)).await.map(drop)
            },
            code: Code::InvalidArgument,
            reason: "INVALID_ARGUMENT",
            field: "update_mask",
            says: QUOTED,
        },
        Case {
            what: "an etag on an update",
            answer: {
                let sent =
                    World { id: world.id.clone(), name: "Renamed".into(), etag: long.clone(), ..World::default() };
                let request = update_world(sent, vec!["name".into()]);
                app.worlds().update_world(authed(request, token)).await.map(drop)
            },
            code: Code::InvalidArgument,
            reason: "INVALID_ARGUMENT",
            field: "etag",
            says: "at most 100 characters, not 100000",
        },
        Case {
            what: "an etag on a delete",
            answer: {
                let request = DeleteWorldRequest { id: world.id.clone(), etag: long.clone() };
                app.worlds().delete_world(authed(request, token)).await.map(drop)
            },
            code: Code::InvalidArgument,
            reason: "INVALID_ARGUMENT",
            field: "etag",
            says: "at most 100 characters, not 100000",
        },
        Case {
            what: "a request id",
            answer: {
                let world = World { name: "Twice".into(), ..World::default() };
                let request = CreateWorldRequest { world: Some(world), request_id: long.clone() };
                app.worlds().create_world(authed(request, token)).await.map(drop)
            },
            code: Code::InvalidArgument,
            reason: "INVALID_ARGUMENT",
            field: "request_id",
            says: "at most 100 characters",
        },
        Case {
            what: "an id among a story's entities",
            answer: {
                let story = Story { title: "Linked".into(), entity_ids: vec![long.clone()], ..Story::default() };
                let request =
                    CreateStoryRequest { world_id: world.id.clone(), story: Some(story), ..Default::default() };
                app.stories().create_story(authed(request, token)).await.map(drop)
            },
            code: Code::InvalidArgument,
            reason: "INVALID_ARGUMENT",
            field: "story.entity_ids",
            says: QUOTED,
        },
        Case {
            what: "an attribute key",
            answer: {
                let attributes = HashMap::from([(long.clone(), "value".to_owned())]);
                let entity = Entity { name: "Ada".into(), attributes, ..Entity::default() };
                let request =
                    CreateEntityRequest { world_id: world.id.clone(), entity: Some(entity), ..Default::default() };
                app.entities().create_entity(authed(request, token)).await.map(drop)
            },
            code: Code::InvalidArgument,
            reason: "INVALID_ARGUMENT",
            field: "entity.attributes",
            says: QUOTED,
        },
        Case {
            what: "a username to share with",
            answer: {
                let request = ShareWorldRequest {
                    world_id: world.id.clone(),
                    user: long.clone(),
                    role: ShareRole::Reader.into(),
                };
                app.worlds().share_world(authed(request, token)).await.map(drop)
            },
            code: Code::InvalidArgument,
            reason: "INVALID_ARGUMENT",
            field: "user",
            says: "at most 50 characters, not 100000",
        },
        Case {
            what: "a username to register",
            answer: {
                let request = RegisterRequest {
                    username: long.clone(),
                    email: "long@example.test".into(),
                    password: PASSWORD.into(),
                };
                app.accounts().register(request).await.map(drop)
            },
            code: Code::InvalidArgument,
            reason: "INVALID_ARGUMENT",
            field: "username",
            says: "at most 50 characters, not 100000",
        },
        Case {
            what: "an email address to register",
            answer: {
                let request =
                    RegisterRequest { username: "long".into(), email: long.clone(), password: PASSWORD.into() };
                app.accounts().register(request).await.map(drop)
            },
            code: Code::InvalidArgument,
            reason: "INVALID_ARGUMENT",
            field: "email",
            says: "at most 254 characters, not 100000",
        },
        Case {
            what: "a login",
            answer: app
                .accounts()
                .login(LoginRequest { login: long.clone(), password: PASSWORD.into() })
                .await
                .map(drop),
            code: Code::InvalidArgument,
            reason: "INVALID_ARGUMENT",
            field: "login",
            says: "at most 254 characters, not 100000",
        },
    ];
    for case in cases {
        let status = expect_code(case.answer, case.code, case.reason, case.what);
        expect_short_answer(&status, SHORT, case.says, case.what);
        if case.code == Code::InvalidArgument {
            expect_field_within(&status, case.field, case.what);
        }
    }
    assert_eq!(app.count("login_throttle", &[]).await, 0, "a login that can name no account is not counted");
}
