//! WorldService: every method's happy path and each error it returns.

use crate::common;

use std::collections::HashSet;

use common::*;
use fabula_contracts::pb::story::{
    CreateWorldRequest, DeleteWorldRequest, GetWorldRequest, ListWorldSharesRequest, ListWorldsRequest, ShareRole,
    ShareWorldRequest, UnshareWorldRequest, UpdateWorldRequest, Visibility, World, WorldType,
};
use prost_types::FieldMask;
use tonic::Code;

both_databases!(
    creates_and_reads_back_a_world,
    unspecified_fields_take_their_defaults,
    refuses_bad_worlds_naming_each_field,
    anonymous_callers_cannot_write,
    a_user_may_own_one_public_world,
    a_quota_of_zero_refuses_the_first_public_world,
    a_create_with_a_request_id_is_idempotent,
    get_refuses_bad_and_unknown_ids,
    lists_filter_and_refuse_bad_queries,
    a_pagination_walk_sees_each_world_once,
    updates_follow_the_mask_or_the_populated_fields,
    update_errors,
    deletes_with_and_without_an_etag,
    shares_grant_and_unshares_revoke,
    share_errors,
);

fn world(name: &str, visibility: Visibility) -> World {
    World { name: name.into(), visibility: visibility.into(), ..World::default() }
}

fn create(world: World, request_id: &str) -> CreateWorldRequest {
    CreateWorldRequest { world: Some(world), request_id: request_id.into() }
}

fn list(page_size: i32, page_token: &str, filter: &str) -> ListWorldsRequest {
    ListWorldsRequest { page_size, page_token: page_token.into(), filter: filter.into() }
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() })
}

async fn creates_and_reads_back_a_world(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let sent = World {
        name: "  Middle-earth  ".into(),
        description: "Rings, mostly.".into(),
        world_type: WorldType::Fantasy.into(),
        visibility: Visibility::Private.into(),
        ..World::default()
    };
    let created = app.worlds().create_world(authed(create(sent, ""), &alice.token)).await.unwrap().into_inner();
    assert_eq!(created.name, "Middle-earth", "the name is trimmed");
    assert_eq!(created.description, "Rings, mostly.");
    assert_eq!(created.world_type(), WorldType::Fantasy);
    assert_eq!(created.visibility(), Visibility::Private);
    assert_eq!(created.owner_id, alice.id, "the caller owns the world");
    assert!(uuid::Uuid::try_parse(&created.id).is_ok(), "the id is a UUID: {}", created.id);
    assert!(!created.etag.is_empty(), "a new world has an etag");
    assert!(created.create_time.is_some() && created.update_time.is_some(), "times are set");

    let read = app
        .worlds()
        .get_world(authed(GetWorldRequest { id: created.id.clone() }, &alice.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, created, "Get returns what Create returned");
    assert_eq!(app.count("worlds WHERE id = $1 AND owner_id = $2", &[&created.id, &alice.id]).await, 1);
}

async fn unspecified_fields_take_their_defaults(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let created = app
        .worlds()
        .create_world(authed(create(World { name: "Bare".into(), ..World::default() }, ""), &alice.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.visibility(), Visibility::Draft, "worlds start as drafts");
    assert_eq!(created.world_type(), WorldType::Other, "an unspecified type is OTHER");
    assert_eq!(created.description, "");
}

async fn refuses_bad_worlds_naming_each_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let ok = || world("Fine", Visibility::Draft);
    let cases = vec![
        BadFields {
            request: CreateWorldRequest { world: None, request_id: String::new() },
            fields: &["world"],
            why: "the world is required",
        },
        BadFields {
            request: create(World { name: String::new(), ..ok() }, ""),
            fields: &["world.name"],
            why: "an empty name",
        },
        BadFields {
            request: create(World { name: "   ".into(), ..ok() }, ""),
            fields: &["world.name"],
            why: "a name of spaces only",
        },
        BadFields {
            request: create(World { name: "n".repeat(201), ..ok() }, ""),
            fields: &["world.name"],
            why: "a name of 201 characters",
        },
        BadFields {
            request: create(World { description: "d".repeat(10_001), ..ok() }, ""),
            fields: &["world.description"],
            why: "a description of 10 001 characters",
        },
        BadFields {
            request: create(World { world_type: 99, ..ok() }, ""),
            fields: &["world.world_type"],
            why: "an unknown world type",
        },
        BadFields {
            request: create(World { visibility: 42, ..ok() }, ""),
            fields: &["world.visibility"],
            why: "an unknown visibility",
        },
        BadFields {
            request: create(ok(), &"r".repeat(101)),
            fields: &["request_id"],
            why: "a request id of 101 characters",
        },
        BadFields {
            request: create(World { name: String::new(), world_type: 99, visibility: 42, ..ok() }, ""),
            fields: &["world.name", "world.world_type", "world.visibility"],
            why: "every bad field is named at once",
        },
    ];
    for BadFields { request, fields, why } in cases {
        let status = expect_code(
            app.worlds().create_world(authed(request, &alice.token)).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            why,
        );
        let named = bad_fields(&status);
        for field in fields {
            assert!(named.iter().any(|n| n == field), "{why}: BadRequest names {named:?}, missing {field}");
        }
    }
    // The boundaries themselves are fine.
    let edge = World { name: "é".repeat(200), description: "d".repeat(10_000), ..ok() };
    app.worlds().create_world(authed(create(edge, ""), &alice.token)).await.expect("200 characters of name");
    assert_eq!(app.count("worlds", &[]).await, 1, "nothing but the boundary world was created");
}

async fn anonymous_callers_cannot_write(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let public = app.create_world(&alice, "Open", Visibility::Public).await;
    let mut worlds = app.worlds();
    expect_code(
        worlds.create_world(create(world("Sneaky", Visibility::Draft), "")).await,
        Code::Unauthenticated,
        "TOKEN_MISSING",
        "create without a token",
    );
    let update = UpdateWorldRequest {
        world: Some(World { id: public.id.clone(), ..world("X", Visibility::Unspecified) }),
        update_mask: None,
    };
    expect_code(worlds.update_world(update).await, Code::Unauthenticated, "TOKEN_MISSING", "update without a token");
    expect_code(
        worlds.delete_world(DeleteWorldRequest { id: public.id.clone(), etag: String::new() }).await,
        Code::Unauthenticated,
        "TOKEN_MISSING",
        "delete without a token",
    );
    let share =
        ShareWorldRequest { world_id: public.id.clone(), user: alice.id.clone(), role: ShareRole::Reader.into() };
    expect_code(worlds.share_world(share).await, Code::Unauthenticated, "TOKEN_MISSING", "share without a token");
    // Reading a public world needs no token.
    worlds.get_world(GetWorldRequest { id: public.id }).await.expect("anonymous read of a public world");
}

async fn a_user_may_own_one_public_world(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let admin = app.admin().await;
    let mut worlds = app.worlds();
    app.create_world(&alice, "First", Visibility::Public).await;

    let status = expect_code(
        worlds.create_world(authed(create(world("Second", Visibility::Public), ""), &alice.token)).await,
        Code::ResourceExhausted,
        "QUOTA_EXCEEDED",
        "a USER's second public world",
    );
    assert!(!status.message().is_empty(), "the refusal explains itself");

    // Drafts do not count, but publishing one does.
    let draft = app.create_world(&alice, "Draft", Visibility::Draft).await;
    let publish = UpdateWorldRequest {
        world: Some(World { id: draft.id.clone(), visibility: Visibility::Public.into(), ..World::default() }),
        update_mask: mask(&["visibility"]),
    };
    expect_code(
        worlds.update_world(authed(publish, &alice.token)).await,
        Code::ResourceExhausted,
        "QUOTA_EXCEEDED",
        "publishing a draft over the quota",
    );
    assert_eq!(
        app.count("worlds WHERE owner_id = $1 AND visibility = 'PUBLIC'", &[&alice.id]).await,
        1,
        "the refused writes changed nothing"
    );
    // Updating the public world itself (still public) is no new public world.
    let first = app.count("worlds WHERE owner_id = $1", &[&alice.id]).await;
    assert_eq!(first, 2);

    // Administrators have no quota.
    for name in ["A1", "A2", "A3"] {
        app.create_world(&admin, name, Visibility::Public).await;
    }
}

async fn a_quota_of_zero_refuses_the_first_public_world(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.quotas.public_worlds_user = 0).await;
    let alice = app.register("alice").await;
    expect_code(
        app.worlds().create_world(authed(create(world("Open", Visibility::Public), ""), &alice.token)).await,
        Code::ResourceExhausted,
        "QUOTA_EXCEEDED",
        "the configured quota is used",
    );
    app.create_world(&alice, "Closed", Visibility::Private).await;
}

async fn a_create_with_a_request_id_is_idempotent(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut worlds = app.worlds();
    let request = || create(world("Once", Visibility::Draft), "create-once-1");

    let first = worlds.create_world(authed(request(), &alice.token)).await.unwrap().into_inner();
    let again = worlds.create_world(authed(request(), &alice.token)).await.unwrap().into_inner();
    assert_eq!(again.id, first.id, "a retry returns the first world");
    // Even with a different body: the request id decides.
    let changed = create(world("Changed", Visibility::Draft), "create-once-1");
    let third = worlds.create_world(authed(changed, &alice.token)).await.unwrap().into_inner();
    assert_eq!(third.id, first.id, "a retry with another body still returns the first world");
    assert_eq!(app.count("worlds WHERE owner_id = $1", &[&alice.id]).await, 1, "nothing was duplicated");

    let other = create(world("Once", Visibility::Draft), "create-once-2");
    let second = worlds.create_world(authed(other, &alice.token)).await.unwrap().into_inner();
    assert_ne!(second.id, first.id, "another request id makes another world");

    let bobs = worlds.create_world(authed(request(), &bob.token)).await.unwrap().into_inner();
    assert_ne!(bobs.id, first.id, "request ids are per caller");
    assert_eq!(bobs.owner_id, bob.id);
    assert_eq!(app.count("worlds", &[]).await, 3);
}

async fn get_refuses_bad_and_unknown_ids(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let mut worlds = app.worlds();
    let get = |id: &str| authed(GetWorldRequest { id: id.into() }, &alice.token);
    let cases = [
        BadInput { request: get(""), field: "id", why: "an empty id" },
        BadInput { request: get("not-a-uuid"), field: "id", why: "an id that is not a UUID" },
        BadInput { request: get("42"), field: "id", why: "a number" },
    ];
    for BadInput { request, field, why } in cases {
        expect_invalid(worlds.get_world(request).await, field, why);
    }
    expect_code(
        worlds.get_world(authed(GetWorldRequest { id: unknown_id() }, &alice.token)).await,
        Code::NotFound,
        "NOT_FOUND",
        "an id that names no world",
    );
    expect_code(
        worlds.get_world(GetWorldRequest { id: unknown_id() }).await,
        Code::NotFound,
        "NOT_FOUND",
        "anonymous, unknown id",
    );
}

async fn lists_filter_and_refuse_bad_queries(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut worlds = app.worlds();
    let open = app.create_world(&alice, "Open", Visibility::Public).await;
    let draft = app.create_world(&alice, "Draft", Visibility::Draft).await;
    let scifi = World { world_type: WorldType::SciFi.into(), ..world("Space", Visibility::Private) };
    let space = worlds.create_world(authed(create(scifi, ""), &alice.token)).await.unwrap().into_inner();
    let bobs = app.create_world(&bob, "Bob's", Visibility::Public).await;

    let ids = |worlds: &[World]| worlds.iter().map(|w| w.id.clone()).collect::<HashSet<_>>();
    let by_owner = format!(r#"owner_id = "{}""#, bob.id);
    let cases = vec![
        Filtered { filter: "", expected: vec![&open, &draft, &space, &bobs], why: "everything alice may read" },
        Filtered { filter: r#"visibility = "PUBLIC""#, expected: vec![&open, &bobs], why: "public only" },
        Filtered { filter: "world_type = SCI_FI", expected: vec![&space], why: "by type, unquoted" },
        Filtered { filter: &by_owner, expected: vec![&bobs], why: "by owner" },
        Filtered {
            filter: r#"visibility = "DRAFT" AND world_type = "OTHER""#,
            expected: vec![&draft],
            why: "two terms",
        },
    ];
    for Filtered { filter, expected, why } in cases {
        let page = worlds.list_worlds(authed(list(0, "", filter), &alice.token)).await.unwrap().into_inner();
        let want: HashSet<_> = expected.iter().map(|w| w.id.clone()).collect();
        assert_eq!(ids(&page.worlds), want, "{why} ({filter})");
        assert_eq!(page.total_size as usize, want.len(), "{why}: total_size");
        assert!(page.next_page_token.is_empty(), "{why}: one page");
    }
    let anonymous = worlds.list_worlds(list(0, "", "")).await.unwrap().into_inner();
    assert_eq!(ids(&anonymous.worlds), ids(&[open.clone(), bobs.clone()]), "anonymous callers see public worlds");

    let bad = vec![
        BadInput { request: list(-1, "", ""), field: "page_size", why: "a negative page size" },
        BadInput { request: list(0, "", "colour = red"), field: "filter", why: "an unknown field" },
        BadInput { request: list(0, "", "visibility = SECRET"), field: "filter", why: "an unknown enum value" },
        BadInput { request: list(0, "", "visibility"), field: "filter", why: "a term without a value" },
        BadInput {
            request: list(0, "", r#"visibility = "PUBLIC" OR visibility = "DRAFT""#),
            field: "filter",
            why: "OR is not supported",
        },
        BadInput { request: list(0, "", "name = \"unclosed"), field: "filter", why: "an unclosed quote" },
        BadInput { request: list(0, "garbage!", ""), field: "page_token", why: "a page token the service never made" },
    ];
    for BadInput { request, field, why } in bad {
        expect_invalid(worlds.list_worlds(authed(request, &alice.token)).await, field, why);
    }

    // A token is bound to its query.
    let first = worlds.list_worlds(authed(list(1, "", ""), &alice.token)).await.unwrap().into_inner();
    assert_eq!(first.worlds.len(), 1);
    assert!(!first.next_page_token.is_empty(), "more pages follow");
    expect_invalid(
        worlds.list_worlds(authed(list(1, &first.next_page_token, "world_type = OTHER"), &alice.token)).await,
        "page_token",
        "a page token reused with another filter",
    );
    let second = worlds.list_worlds(authed(list(1, &first.next_page_token, ""), &alice.token)).await;
    assert_eq!(second.expect("the token works with its own query").into_inner().worlds.len(), 1);
}

async fn a_pagination_walk_sees_each_world_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    const WORLDS: usize = 205;
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..8 {
        let (mut worlds, token) = (app.worlds(), admin.token.clone());
        tasks.spawn(async move {
            for i in (lane..WORLDS).step_by(8) {
                let request = create(world(&format!("World {i}"), Visibility::Private), "");
                worlds.create_world(authed(request, &token)).await.expect("create");
            }
        });
    }
    tasks.join_all().await;

    let mut worlds = app.worlds();
    let coerced = worlds.list_worlds(authed(list(10_000, "", ""), &admin.token)).await.unwrap().into_inner();
    assert_eq!(coerced.worlds.len(), 200, "a page size over 200 is lowered to 200");
    assert!(!coerced.next_page_token.is_empty());
    let default = worlds.list_worlds(authed(list(0, "", ""), &admin.token)).await.unwrap().into_inner();
    assert_eq!(default.worlds.len(), 50, "the default page size is 50");

    let (mut seen, mut token, mut pages) = (HashSet::new(), String::new(), 0);
    loop {
        let page = worlds.list_worlds(authed(list(50, &token, ""), &admin.token)).await.unwrap().into_inner();
        pages += 1;
        assert_eq!(page.total_size as usize, WORLDS, "total_size on page {pages}");
        for w in &page.worlds {
            assert!(seen.insert(w.id.clone()), "world {} seen twice", w.id);
        }
        if page.next_page_token.is_empty() {
            assert_eq!(page.worlds.len(), WORLDS % 50, "the last page holds the rest");
            break;
        }
        assert_eq!(page.worlds.len(), 50, "a full page before the last");
        token = page.next_page_token;
    }
    assert_eq!((seen.len(), pages), (WORLDS, 5));
}

async fn updates_follow_the_mask_or_the_populated_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let mut worlds = app.worlds();
    let original = World {
        description: "Old description".into(),
        world_type: WorldType::Modern.into(),
        ..world("Old name", Visibility::Draft)
    };
    let created = worlds.create_world(authed(create(original, ""), &alice.token)).await.unwrap().into_inner();

    // With a mask, only the masked fields change, even if others are sent.
    let masked = UpdateWorldRequest {
        world: Some(World {
            id: created.id.clone(),
            name: "New name".into(),
            description: "ignored: not in the mask".into(),
            etag: created.etag.clone(),
            ..World::default()
        }),
        update_mask: mask(&["name"]),
    };
    let updated = worlds.update_world(authed(masked, &alice.token)).await.unwrap().into_inner();
    assert_eq!(updated.name, "New name");
    assert_eq!(updated.description, "Old description", "unmasked fields are kept");
    assert_eq!(updated.world_type(), WorldType::Modern);
    assert_ne!(updated.etag, created.etag, "the etag changes with every update");
    let seconds = |w: &World| w.update_time.map(|t| (t.seconds, t.nanos));
    assert!(seconds(&updated) >= seconds(&created), "update_time does not go back");
    assert_eq!(updated.create_time, created.create_time, "create_time never changes");

    // Without a mask, every populated field changes and empty ones are kept.
    let populated = UpdateWorldRequest {
        world: Some(World {
            id: created.id.clone(),
            description: "New description".into(),
            visibility: Visibility::Private.into(),
            ..World::default()
        }),
        update_mask: None,
    };
    let updated = worlds.update_world(authed(populated, &alice.token)).await.unwrap().into_inner();
    assert_eq!(updated.name, "New name", "an empty name is not populated, so it is kept");
    assert_eq!(updated.description, "New description");
    assert_eq!(updated.visibility(), Visibility::Private);

    // A masked empty field is cleared.
    let clear = UpdateWorldRequest {
        world: Some(World { id: created.id.clone(), ..World::default() }),
        update_mask: mask(&["description"]),
    };
    let updated = worlds.update_world(authed(clear, &alice.token)).await.unwrap().into_inner();
    assert_eq!(updated.description, "", "a masked field sent empty is cleared");
    let read = worlds.get_world(authed(GetWorldRequest { id: created.id }, &alice.token)).await.unwrap();
    assert_eq!(read.into_inner(), updated, "the update was stored");
}

async fn update_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let mut worlds = app.worlds();
    let created = app.create_world(&alice, "Mine", Visibility::Draft).await;
    let rename = |etag: &str| UpdateWorldRequest {
        world: Some(World { id: created.id.clone(), name: "Renamed".into(), etag: etag.into(), ..World::default() }),
        update_mask: mask(&["name"]),
    };
    let with = |world: World, paths: &[&str]| UpdateWorldRequest { world: Some(world), update_mask: mask(paths) };

    let invalid = vec![
        BadInput {
            request: UpdateWorldRequest { world: None, update_mask: None },
            field: "world",
            why: "the world is required",
        },
        BadInput {
            request: with(World { id: "nope".into(), name: "X".into(), ..World::default() }, &["name"]),
            field: "world.id",
            why: "a bad id",
        },
        BadInput {
            request: with(World { id: String::new(), name: "X".into(), ..World::default() }, &["name"]),
            field: "world.id",
            why: "no id",
        },
        BadInput {
            request: with(World { id: created.id.clone(), ..World::default() }, &["owner_id"]),
            field: "update_mask",
            why: "an output-only field in the mask",
        },
        BadInput {
            request: with(World { id: created.id.clone(), ..World::default() }, &["colour"]),
            field: "update_mask",
            why: "an unknown path",
        },
        BadInput {
            request: with(World { id: created.id.clone(), ..World::default() }, &["name"]),
            field: "world.name",
            why: "the name masked and sent empty",
        },
        BadInput {
            request: with(World { id: created.id.clone(), description: "d".repeat(10_001), ..World::default() }, &[]),
            field: "world.description",
            why: "a description that is too long",
        },
        BadInput {
            request: with(World { id: created.id.clone(), visibility: 17, ..World::default() }, &["visibility"]),
            field: "world.visibility",
            why: "an unknown visibility",
        },
    ];
    for BadInput { request, field, why } in invalid {
        expect_invalid(worlds.update_world(authed(request, &alice.token)).await, field, why);
    }

    expect_code(
        worlds.update_world(authed(rename("\"999\""), &alice.token)).await,
        Code::Aborted,
        "ETAG_MISMATCH",
        "an etag that is not the current one",
    );
    let renamed = worlds.update_world(authed(rename(&created.etag), &alice.token)).await.unwrap().into_inner();
    expect_code(
        worlds.update_world(authed(rename(&created.etag), &alice.token)).await,
        Code::Aborted,
        "ETAG_MISMATCH",
        "the etag of the version before the last update",
    );
    worlds.update_world(authed(rename(&renamed.etag), &alice.token)).await.expect("the current etag works");

    let missing = with(World { id: unknown_id(), name: "X".into(), ..World::default() }, &["name"]);
    expect_code(
        worlds.update_world(authed(missing, &alice.token)).await,
        Code::NotFound,
        "NOT_FOUND",
        "an unknown world",
    );
}

async fn deletes_with_and_without_an_etag(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let mut worlds = app.worlds();
    let first = app.create_world(&alice, "First", Visibility::Draft).await;
    let second = app.create_world(&alice, "Second", Visibility::Draft).await;
    let delete = |id: &str, etag: &str| DeleteWorldRequest { id: id.into(), etag: etag.into() };

    expect_invalid(worlds.delete_world(authed(delete("", ""), &alice.token)).await, "id", "no id");
    expect_invalid(worlds.delete_world(authed(delete("x", ""), &alice.token)).await, "id", "a bad id");
    expect_code(
        worlds.delete_world(authed(delete(&first.id, "\"41\""), &alice.token)).await,
        Code::Aborted,
        "ETAG_MISMATCH",
        "a stale etag",
    );
    worlds.delete_world(authed(delete(&first.id, &first.etag), &alice.token)).await.expect("the current etag");
    worlds.delete_world(authed(delete(&second.id, ""), &alice.token)).await.expect("no etag: unconditional");
    for id in [&first.id, &second.id] {
        expect_code(
            worlds.get_world(authed(GetWorldRequest { id: id.clone() }, &alice.token)).await,
            Code::NotFound,
            "NOT_FOUND",
            "a deleted world is gone",
        );
        expect_code(
            worlds.delete_world(authed(delete(id, ""), &alice.token)).await,
            Code::NotFound,
            "NOT_FOUND",
            "deleting a deleted world",
        );
    }
    assert_eq!(app.count("worlds", &[]).await, 0);
}

async fn shares_grant_and_unshares_revoke(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let mut worlds = app.worlds();
    let secret = app.create_world(&alice, "Secret", Visibility::Private).await;
    let get = |token: &str| authed(GetWorldRequest { id: secret.id.clone() }, token);

    expect_code(worlds.get_world(get(&bob.token)).await, Code::NotFound, "NOT_FOUND", "bob before the share");

    // By username, ignoring case.
    let share = ShareWorldRequest { world_id: secret.id.clone(), user: "BOB".into(), role: ShareRole::Reader.into() };
    let shared = worlds.share_world(authed(share, &alice.token)).await.unwrap().into_inner();
    assert_eq!((shared.user_id.as_str(), shared.username.as_str()), (bob.id.as_str(), "bob"));
    assert_eq!(shared.role(), ShareRole::Reader);
    assert_eq!(shared.world_id, secret.id);
    worlds.get_world(get(&bob.token)).await.expect("a reader reads the private world");
    let listed = worlds.list_worlds(authed(list(0, "", ""), &bob.token)).await.unwrap().into_inner();
    assert_eq!(listed.worlds.iter().map(|w| &w.id).collect::<Vec<_>>(), vec![&secret.id], "and lists it");

    // By id; sharing again changes the role.
    let by_id =
        ShareWorldRequest { world_id: secret.id.clone(), user: carol.id.clone(), role: ShareRole::Reader.into() };
    worlds.share_world(authed(by_id.clone(), &alice.token)).await.expect("share by id");
    let promote = ShareWorldRequest { role: ShareRole::CoAuthor.into(), ..by_id };
    let promoted = worlds.share_world(authed(promote, &alice.token)).await.unwrap().into_inner();
    assert_eq!(promoted.role(), ShareRole::CoAuthor);

    let shares = worlds
        .list_world_shares(authed(ListWorldSharesRequest { world_id: secret.id.clone() }, &bob.token))
        .await
        .expect("a reader sees the shares")
        .into_inner()
        .shares;
    let mut roles: Vec<_> = shares.iter().map(|s| (s.username.clone(), s.role())).collect();
    roles.sort();
    assert_eq!(roles, vec![("bob".into(), ShareRole::Reader), ("carol".into(), ShareRole::CoAuthor)]);
    assert_eq!(app.count("world_shares WHERE world_id = $1", &[&secret.id]).await, 2, "one row per user");

    let unshare = UnshareWorldRequest { world_id: secret.id.clone(), user_id: bob.id.clone() };
    worlds.unshare_world(authed(unshare.clone(), &alice.token)).await.expect("unshare");
    expect_code(worlds.get_world(get(&bob.token)).await, Code::NotFound, "NOT_FOUND", "bob after the unshare");
    expect_code(
        worlds.unshare_world(authed(unshare, &alice.token)).await,
        Code::NotFound,
        "NOT_FOUND",
        "unsharing a user the world is not shared with",
    );
}

async fn share_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let mut worlds = app.worlds();
    let secret = app.create_world(&alice, "Secret", Visibility::Private).await;
    let open = app.create_world(&bob, "Open", Visibility::Public).await;
    app.share(&alice, &secret.id, &bob, ShareRole::CoAuthor).await;
    let share = |world: &World, user: &str, role: ShareRole| ShareWorldRequest {
        world_id: world.id.clone(),
        user: user.into(),
        role: role.into(),
    };

    let invalid = vec![
        BadInput {
            request: share(&secret, &carol.id, ShareRole::Unspecified),
            field: "role",
            why: "a role is required",
        },
        BadInput {
            request: ShareWorldRequest { role: 9, ..share(&secret, &carol.id, ShareRole::Reader) },
            field: "role",
            why: "an unknown role",
        },
        BadInput { request: share(&secret, "", ShareRole::Reader), field: "user", why: "a user is required" },
        BadInput {
            request: share(&secret, &alice.id, ShareRole::Reader),
            field: "user",
            why: "the owner cannot be shared with",
        },
        BadInput {
            request: ShareWorldRequest { world_id: "bad".into(), ..share(&secret, "carol", ShareRole::Reader) },
            field: "world_id",
            why: "a bad world id",
        },
    ];
    for BadInput { request, field, why } in invalid {
        expect_invalid(worlds.share_world(authed(request, &alice.token)).await, field, why);
    }
    expect_code(
        worlds.share_world(authed(share(&secret, "nobody_here", ShareRole::Reader), &alice.token)).await,
        Code::NotFound,
        "NOT_FOUND",
        "an unknown username",
    );
    expect_code(
        worlds.share_world(authed(share(&secret, &unknown_id(), ShareRole::Reader), &alice.token)).await,
        Code::NotFound,
        "NOT_FOUND",
        "an unknown user id",
    );
    expect_code(
        worlds.share_world(authed(share(&secret, "carol", ShareRole::Reader), &bob.token)).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
        "a co-author may not share the world",
    );
    expect_code(
        worlds.share_world(authed(share(&secret, "bob", ShareRole::Reader), &carol.token)).await,
        Code::NotFound,
        "NOT_FOUND",
        "a stranger cannot see the private world to share it",
    );
    expect_code(
        worlds.share_world(authed(share(&open, "alice", ShareRole::Reader), &carol.token)).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
        "a stranger sees the public world but may not share it",
    );
    let unshare = UnshareWorldRequest { world_id: secret.id.clone(), user_id: bob.id.clone() };
    expect_code(
        worlds.unshare_world(authed(unshare.clone(), &carol.token)).await,
        Code::NotFound,
        "NOT_FOUND",
        "a stranger cannot unshare a private world",
    );
    expect_code(
        worlds.unshare_world(authed(unshare.clone(), &bob.token)).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
        "a co-author may not unshare",
    );
    expect_invalid(
        worlds.unshare_world(authed(UnshareWorldRequest { user_id: "x".into(), ..unshare }, &alice.token)).await,
        "user_id",
        "a bad user id",
    );
    expect_code(
        worlds.list_world_shares(authed(ListWorldSharesRequest { world_id: open.id.clone() }, &carol.token)).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
        "a stranger may read a public world but not its shares",
    );
    expect_code(
        worlds.list_world_shares(authed(ListWorldSharesRequest { world_id: secret.id.clone() }, &carol.token)).await,
        Code::NotFound,
        "NOT_FOUND",
        "a stranger cannot see a private world's shares",
    );
    expect_code(
        worlds.list_world_shares(ListWorldSharesRequest { world_id: open.id.clone() }).await,
        Code::Unauthenticated,
        "TOKEN_MISSING",
        "ListWorldShares needs a user",
    );
    assert_eq!(app.count("world_shares", &[]).await, 1, "only the setup share exists");
}
