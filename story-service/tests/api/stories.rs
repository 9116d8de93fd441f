//! StoryService: every method's happy path and each error it returns, and what
//! deleting a world does to its children.

use crate::common;

use std::collections::HashSet;

use common::*;
use fabula_contracts::pb::story::{
    CreateEntityRequest, CreateLocationRequest, CreateStoryRequest, DeleteStoryRequest, DeleteWorldRequest, Entity,
    GetStoryNeighborsRequest, GetStoryRequest, ListStoriesRequest, Location, MoveStoryRequest, ShareRole, Story,
    StoryFormat, UpdateStoryRequest, Visibility,
};
use prost_types::FieldMask;
use tonic::Code;

both_databases!(
    creates_stories_in_the_worlds_order,
    refuses_bad_stories_naming_each_field,
    create_checks_the_world_and_the_callers_role,
    a_user_may_own_twenty_public_stories,
    a_create_with_a_request_id_is_idempotent,
    lists_filter_and_refuse_bad_queries,
    updates_follow_the_mask_and_the_etag,
    deletes_with_and_without_an_etag,
    neighbors_follow_the_order_and_skip_unreadable_stories,
    moves_put_a_story_in_front_of_another_in_one_step,
    orders_set_near_the_last_one_leave_room_for_more,
    deleting_a_world_deletes_its_children,
);

fn story(title: &str, visibility: Visibility) -> Story {
    Story { title: title.into(), visibility: visibility.into(), ..Story::default() }
}

fn create(world_id: &str, story: Story, request_id: &str) -> CreateStoryRequest {
    CreateStoryRequest { world_id: world_id.into(), story: Some(story), request_id: request_id.into() }
}

fn list(world_id: &str, page_size: i32, page_token: &str, filter: &str) -> ListStoriesRequest {
    let (page_token, filter) = (page_token.into(), filter.into());
    ListStoriesRequest { world_id: world_id.into(), page_size, page_token, filter, ..ListStoriesRequest::default() }
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() })
}

fn ids(stories: &[Story]) -> Vec<String> {
    stories.iter().map(|s| s.id.clone()).collect()
}

async fn creates_stories_in_the_worlds_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let mut stories = app.stories();
    let full = Story {
        content: "# Once\nupon a time".into(),
        format: StoryFormat::Markdown.into(),
        genre: "fairy tale".into(),
        ..story("  The First  ", Visibility::Private)
    };
    let first = stories.create_story(authed(create(&world.id, full, ""), &alice.token)).await.unwrap().into_inner();
    assert_eq!(first.title, "The First", "the title is trimmed");
    assert_eq!(first.content, "# Once\nupon a time", "content is kept as written");
    assert_eq!((first.format(), first.genre.as_str()), (StoryFormat::Markdown, "fairy tale"));
    assert_eq!(first.visibility(), Visibility::Private);
    assert_eq!((first.world_id.as_str(), first.owner_id.as_str()), (world.id.as_str(), alice.id.as_str()));
    assert!(!first.etag.is_empty() && first.create_time.is_some() && first.update_time.is_some());

    let second = app.create_story(&alice, &world.id, "Second", Visibility::Unspecified).await;
    assert_eq!(second.visibility(), Visibility::Draft, "stories start as drafts");
    assert_eq!(second.format(), StoryFormat::Plain, "and plain text");
    let third = app.create_story(&alice, &world.id, "Third", Visibility::Draft).await;
    assert!(first.order < second.order && second.order < third.order, "new stories go last");

    let read = stories.get_story(authed(GetStoryRequest { id: first.id.clone() }, &alice.token)).await.unwrap();
    assert_eq!(read.into_inner(), first, "Get returns what Create returned");
    let listed = stories.list_stories(authed(list(&world.id, 0, "", ""), &alice.token)).await.unwrap().into_inner();
    assert_eq!(ids(&listed.stories), ids(&[first, second, third]), "lists follow the world's order");
    assert_eq!(listed.total_size, 3);
    assert_eq!(app.count("stories WHERE world_id = $1", &[&world.id]).await, 3);
}

async fn refuses_bad_stories_naming_each_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let elsewhere = app.create_world(&alice, "Elsewhere", Visibility::Private).await;
    let foreign_entity = app
        .entities()
        .create_entity(authed(
            CreateEntityRequest {
                world_id: elsewhere.id.clone(),
                entity: Some(Entity { name: "Stranger".into(), ..Entity::default() }),
                request_id: String::new(),
            },
            &alice.token,
        ))
        .await
        .unwrap()
        .into_inner();
    let foreign_location = app
        .locations()
        .create_location(authed(
            CreateLocationRequest {
                world_id: elsewhere.id.clone(),
                location: Some(Location { name: "Far away".into(), ..Location::default() }),
                request_id: String::new(),
            },
            &alice.token,
        ))
        .await
        .unwrap()
        .into_inner();
    let ok = || story("Fine", Visibility::Draft);
    let in_world = |story: Story| create(&world.id, story, "");
    let some_id = unknown_id();

    let cases = vec![
        BadFields {
            request: CreateStoryRequest { world_id: world.id.clone(), story: None, request_id: String::new() },
            fields: &["story"],
            why: "the story is required",
        },
        BadFields { request: create("nope", ok(), ""), fields: &["world_id"], why: "a bad world id" },
        BadFields { request: create("", ok(), ""), fields: &["world_id"], why: "no world id" },
        BadFields {
            request: in_world(Story { title: String::new(), ..ok() }),
            fields: &["story.title"],
            why: "no title",
        },
        BadFields {
            request: in_world(Story { title: "t".repeat(201), ..ok() }),
            fields: &["story.title"],
            why: "a title of 201 characters",
        },
        BadFields {
            request: in_world(Story { content: "x".repeat(1_048_577), ..ok() }),
            fields: &["story.content"],
            why: "content over 1 MiB",
        },
        BadFields {
            request: in_world(Story { content: "é".repeat(524_289), ..ok() }),
            fields: &["story.content"],
            why: "1 MiB counts bytes, not characters",
        },
        BadFields {
            request: in_world(Story { genre: "g".repeat(51), ..ok() }),
            fields: &["story.genre"],
            why: "a genre of 51 characters",
        },
        BadFields {
            request: in_world(Story { format: 7, ..ok() }),
            fields: &["story.format"],
            why: "an unknown format",
        },
        BadFields {
            request: in_world(Story { visibility: 9, ..ok() }),
            fields: &["story.visibility"],
            why: "an unknown visibility",
        },
        BadFields { request: in_world(Story { order: -1, ..ok() }), fields: &["story.order"], why: "a negative order" },
        BadFields {
            request: create(&world.id, ok(), &"r".repeat(101)),
            fields: &["request_id"],
            why: "a request id of 101 characters",
        },
        BadFields {
            request: in_world(Story { entity_ids: vec!["x".into()], ..ok() }),
            fields: &["story.entity_ids[0]"],
            why: "an entity id that is no id",
        },
        BadFields {
            request: in_world(Story { entity_ids: vec![some_id.clone(), some_id.clone()], ..ok() }),
            fields: &["story.entity_ids[1]"],
            why: "the same entity twice",
        },
        BadFields {
            request: in_world(Story { title: String::new(), format: 7, entity_ids: vec!["x".into()], ..ok() }),
            fields: &["story.title", "story.format", "story.entity_ids[0]"],
            why: "every bad field is named at once",
        },
    ];
    for BadFields { request, fields, why } in cases {
        let status = expect_code(
            app.stories().create_story(authed(request, &alice.token)).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            why,
        );
        let named = bad_fields(&status);
        for field in fields {
            assert!(named.iter().any(|n| n == field), "{why}: BadRequest names {named:?}, missing {field}");
        }
    }
    // Well-formed ids of nothing this world holds.
    let missing = vec![
        BadInput {
            request: in_world(Story { entity_ids: vec![unknown_id()], ..ok() }),
            field: "story.entity_ids[0]",
            why: "an entity that does not exist",
        },
        BadInput {
            request: in_world(Story { entity_ids: vec![some_id.clone(), foreign_entity.id.clone()], ..ok() }),
            field: "story.entity_ids[1]",
            why: "an entity of another world",
        },
        BadInput {
            request: in_world(Story { location_ids: vec![foreign_location.id.clone()], ..ok() }),
            field: "story.location_ids[0]",
            why: "a location of another world",
        },
        BadInput {
            request: in_world(Story { location_ids: vec![foreign_entity.id.clone()], ..ok() }),
            field: "story.location_ids[0]",
            why: "an entity id given as a location",
        },
    ];
    for BadInput { request, field, why } in missing {
        expect_missing(app.stories().create_story(authed(request, &alice.token)).await, field, why);
    }
    assert_eq!(app.count("stories", &[]).await, 0, "no bad story was stored");
    // Exactly 1 MiB is fine.
    let edge = Story { content: "x".repeat(1_048_576), ..ok() };
    app.stories().create_story(authed(in_world(edge), &alice.token)).await.expect("1 MiB of content");
}

async fn create_checks_the_world_and_the_callers_role(backend: Backend) {
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
    let mut stories = app.stories();
    let attempt = |world_id: &str| create(world_id, story("Attempt", Visibility::Draft), "");

    let by_co_author = stories.create_story(authed(attempt(&private.id), &co_author.token)).await;
    let by_co_author = by_co_author.expect("a co-author writes in the world").into_inner();
    assert_eq!(by_co_author.owner_id, co_author.id, "the co-author owns their story");
    let refusals = [
        Refusal {
            request: attempt(&private.id),
            token: Some(&reader.token),
            code: Code::PermissionDenied,
            want: "PERMISSION_DENIED",
            why: "a reader writes in a private world",
        },
        Refusal {
            request: attempt(&public.id),
            token: Some(&reader.token),
            code: Code::PermissionDenied,
            want: "PERMISSION_DENIED",
            why: "a reader writes in a public world",
        },
        Refusal {
            request: attempt(&public.id),
            token: Some(&stranger.token),
            code: Code::PermissionDenied,
            want: "PERMISSION_DENIED",
            why: "a stranger writes in a public world",
        },
        Refusal {
            request: attempt(&private.id),
            token: Some(&stranger.token),
            code: Code::NotFound,
            want: "NOT_FOUND",
            why: "a stranger writes in a private world",
        },
        Refusal {
            request: attempt(&unknown_id()),
            token: Some(&owner.token),
            code: Code::NotFound,
            want: "NOT_FOUND",
            why: "a world that does not exist",
        },
        Refusal {
            request: attempt(&public.id),
            token: None,
            code: Code::Unauthenticated,
            want: "TOKEN_MISSING",
            why: "an anonymous caller",
        },
    ];
    for Refusal { request, token, code, want, why } in refusals {
        expect_code(stories.create_story(as_caller(request, token)).await, code, want, why);
    }
    assert_eq!(app.count("stories", &[]).await, 1, "only the co-author's story exists");
}

async fn a_user_may_own_twenty_public_stories(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Public).await;
    for i in 0..20 {
        app.create_story(&alice, &world.id, &format!("Public {i}"), Visibility::Public).await;
    }
    let mut stories = app.stories();
    expect_code(
        stories
            .create_story(authed(create(&world.id, story("One too many", Visibility::Public), ""), &alice.token))
            .await,
        Code::ResourceExhausted,
        "QUOTA_EXCEEDED",
        "a USER's 21st public story",
    );
    let draft = app.create_story(&alice, &world.id, "Draft", Visibility::Draft).await;
    let publish = UpdateStoryRequest {
        story: Some(Story { id: draft.id.clone(), visibility: Visibility::Public.into(), ..Story::default() }),
        update_mask: mask(&["visibility"]),
    };
    expect_code(
        stories.update_story(authed(publish, &alice.token)).await,
        Code::ResourceExhausted,
        "QUOTA_EXCEEDED",
        "publishing a draft over the quota",
    );
    assert_eq!(app.count("stories WHERE owner_id = $1 AND visibility = 'PUBLIC'", &[&alice.id]).await, 20);
}

async fn a_create_with_a_request_id_is_idempotent(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let mut stories = app.stories();
    let request = || create(&world.id, story("Once", Visibility::Draft), "story-once");
    let first = stories.create_story(authed(request(), &alice.token)).await.unwrap().into_inner();
    let again = stories.create_story(authed(request(), &alice.token)).await.unwrap().into_inner();
    assert_eq!(again, first, "a retry returns the first story");
    assert_eq!(app.count("stories", &[]).await, 1, "nothing was duplicated");
    let other = create(&world.id, story("Twice", Visibility::Draft), "story-twice");
    let second = stories.create_story(authed(other, &alice.token)).await.unwrap().into_inner();
    assert_ne!(second.id, first.id);
    assert!(second.order > first.order, "the retry did not take a place in the order either");
    assert_eq!(app.count("stories", &[]).await, 2);
}

async fn lists_filter_and_refuse_bad_queries(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let world = app.create_world(&alice, "Home", Visibility::Public).await;
    let other_world = app.create_world(&alice, "Other", Visibility::Private).await;
    app.share(&alice, &world.id, &bob, ShareRole::CoAuthor).await;
    let mut stories = app.stories();
    let epic = Story { genre: "epic".into(), ..story("Epic", Visibility::Public) };
    let epic = stories.create_story(authed(create(&world.id, epic, ""), &alice.token)).await.unwrap().into_inner();
    let draft = app.create_story(&alice, &world.id, "Draft", Visibility::Draft).await;
    let bobs = app.create_story(&bob, &world.id, "Bob's", Visibility::Public).await;

    let by_owner = format!(r#"owner_id = "{}""#, bob.id);
    let cases = vec![
        Filtered { filter: "", expected: vec![&epic, &draft, &bobs], why: "every story, in order" },
        Filtered { filter: r#"genre = "epic""#, expected: vec![&epic], why: "by genre" },
        Filtered { filter: "visibility = PUBLIC", expected: vec![&epic, &bobs], why: "by visibility" },
        Filtered { filter: &by_owner, expected: vec![&bobs], why: "by owner" },
        Filtered { filter: r#"visibility = "PUBLIC" AND genre = "epic""#, expected: vec![&epic], why: "two terms" },
    ];
    for Filtered { filter, expected, why } in cases {
        let page = stories.list_stories(authed(list(&world.id, 0, "", filter), &alice.token)).await.unwrap();
        let page = page.into_inner();
        assert_eq!(ids(&page.stories), expected.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), "{why}");
        assert_eq!(page.total_size as usize, expected.len(), "{why}: total_size");
    }
    let anonymous = stories.list_stories(list(&world.id, 0, "", "")).await.unwrap().into_inner();
    assert_eq!(ids(&anonymous.stories), ids(&[epic.clone(), bobs.clone()]), "anonymous callers see public stories");
    assert_eq!(anonymous.total_size, 2, "total_size counts only what the caller may read");

    let bad = vec![
        BadInput { request: list(&world.id, -1, "", ""), field: "page_size", why: "a negative page size" },
        BadInput {
            request: list(&world.id, 0, "", "title = x"),
            field: "filter",
            why: "a field that cannot be filtered on",
        },
        BadInput {
            request: list(&world.id, 0, "", "visibility = SECRET"),
            field: "filter",
            why: "an unknown visibility",
        },
        BadInput { request: list(&world.id, 0, "", "genre"), field: "filter", why: "a term without a value" },
        BadInput {
            request: list(&world.id, 0, "%%%", ""),
            field: "page_token",
            why: "a page token the service never made",
        },
        BadInput { request: list("nope", 0, "", ""), field: "world_id", why: "a bad world id" },
    ];
    for BadInput { request, field, why } in bad {
        expect_invalid(stories.list_stories(authed(request, &alice.token)).await, field, why);
    }
    expect_code(
        stories.list_stories(authed(list(&unknown_id(), 0, "", ""), &alice.token)).await,
        Code::NotFound,
        "NOT_FOUND",
        "a world that does not exist",
    );
    let first = stories.list_stories(authed(list(&world.id, 1, "", ""), &alice.token)).await.unwrap().into_inner();
    assert_eq!(ids(&first.stories), vec![epic.id.clone()]);
    let token = first.next_page_token;
    expect_invalid(
        stories.list_stories(authed(list(&world.id, 1, &token, "genre = epic"), &alice.token)).await,
        "page_token",
        "a page token reused with another filter",
    );
    expect_invalid(
        stories.list_stories(authed(list(&other_world.id, 1, &token, ""), &alice.token)).await,
        "page_token",
        "a page token reused for another world",
    );
    let second = stories.list_stories(authed(list(&world.id, 1, &token, ""), &alice.token)).await.unwrap();
    assert_eq!(ids(&second.into_inner().stories), vec![draft.id.clone()], "the token goes on where it left off");
}

async fn updates_follow_the_mask_and_the_etag(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let mut stories = app.stories();
    let entity = app
        .entities()
        .create_entity(authed(
            CreateEntityRequest {
                world_id: world.id.clone(),
                entity: Some(Entity { name: "Hero".into(), ..Entity::default() }),
                request_id: String::new(),
            },
            &alice.token,
        ))
        .await
        .unwrap()
        .into_inner();
    let first = app.create_story(&alice, &world.id, "First", Visibility::Draft).await;
    let second = app.create_story(&alice, &world.id, "Second", Visibility::Draft).await;
    let update = |story: Story, paths: &[&str]| {
        authed(
            UpdateStoryRequest { story: Some(story), update_mask: if paths.is_empty() { None } else { mask(paths) } },
            &alice.token,
        )
    };

    let sent = Story {
        id: first.id.clone(),
        title: "First, revised".into(),
        content: "not in the mask".into(),
        entity_ids: vec![entity.id.clone()],
        etag: first.etag.clone(),
        ..Story::default()
    };
    let updated = stories.update_story(update(sent, &["title", "entity_ids"])).await.unwrap().into_inner();
    assert_eq!(updated.title, "First, revised");
    assert_eq!(updated.content, "", "content was not in the mask");
    assert_eq!(updated.entity_ids, vec![entity.id.clone()], "links are updated");
    assert_ne!(updated.etag, first.etag);

    let populated = Story { id: first.id.clone(), genre: "saga".into(), ..Story::default() };
    let updated = stories.update_story(update(populated, &[])).await.unwrap().into_inner();
    assert_eq!((updated.genre.as_str(), updated.title.as_str()), ("saga", "First, revised"), "no mask: populated only");
    assert_eq!(updated.entity_ids, vec![entity.id.clone()], "empty links are not populated, so kept");

    // Moving the first story after the second changes the list's order.
    let moved = Story { id: first.id.clone(), order: second.order + 10, ..Story::default() };
    stories.update_story(update(moved, &["order"])).await.expect("move the story");
    let listed = stories.list_stories(authed(list(&world.id, 0, "", ""), &alice.token)).await.unwrap().into_inner();
    assert_eq!(ids(&listed.stories), vec![second.id.clone(), first.id.clone()], "the order follows the update");

    let stale = Story { id: first.id.clone(), title: "Lost".into(), etag: first.etag.clone(), ..Story::default() };
    expect_code(stories.update_story(update(stale, &["title"])).await, Code::Aborted, "ETAG_MISMATCH", "a stale etag");

    let invalid = vec![
        BadInput {
            request: UpdateStoryRequest { story: None, update_mask: None },
            field: "story",
            why: "the story is required",
        },
        BadInput {
            request: UpdateStoryRequest {
                story: Some(Story { id: "x".into(), ..story("T", Visibility::Draft) }),
                update_mask: None,
            },
            field: "story.id",
            why: "a bad id",
        },
        BadInput {
            request: UpdateStoryRequest {
                story: Some(Story { id: first.id.clone(), ..Story::default() }),
                update_mask: mask(&["world_id"]),
            },
            field: "update_mask",
            why: "moving a story to another world",
        },
        BadInput {
            request: UpdateStoryRequest {
                story: Some(Story { id: first.id.clone(), ..Story::default() }),
                update_mask: mask(&["title"]),
            },
            field: "story.title",
            why: "an empty title in the mask",
        },
        BadInput {
            request: UpdateStoryRequest {
                story: Some(Story { id: first.id.clone(), content: "x".repeat(1_048_577), ..Story::default() }),
                update_mask: None,
            },
            field: "story.content",
            why: "content over 1 MiB",
        },
    ];
    for BadInput { request, field, why } in invalid {
        expect_invalid(stories.update_story(authed(request, &alice.token)).await, field, why);
    }
    let entity_as_location = Story { id: first.id.clone(), location_ids: vec![entity.id.clone()], ..Story::default() };
    let request = UpdateStoryRequest { story: Some(entity_as_location), update_mask: None };
    expect_missing(
        stories.update_story(authed(request, &alice.token)).await,
        "story.location_ids[0]",
        "an entity given as a location",
    );
    let missing = Story { id: unknown_id(), title: "X".into(), ..Story::default() };
    expect_code(
        stories.update_story(update(missing, &["title"])).await,
        Code::NotFound,
        "NOT_FOUND",
        "a story that does not exist",
    );
}

async fn deletes_with_and_without_an_etag(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let first = app.create_story(&alice, &world.id, "First", Visibility::Draft).await;
    let second = app.create_story(&alice, &world.id, "Second", Visibility::Draft).await;
    let mut stories = app.stories();
    let delete = |id: &str, etag: &str| authed(DeleteStoryRequest { id: id.into(), etag: etag.into() }, &alice.token);

    expect_invalid(stories.delete_story(delete("nope", "")).await, "id", "a bad id");
    expect_code(stories.delete_story(delete(&first.id, "\"77\"")).await, Code::Aborted, "ETAG_MISMATCH", "stale etag");
    stories.delete_story(delete(&first.id, &first.etag)).await.expect("the current etag");
    stories.delete_story(delete(&second.id, "")).await.expect("no etag");
    for id in [&first.id, &second.id] {
        expect_code(
            stories.get_story(authed(GetStoryRequest { id: id.clone() }, &alice.token)).await,
            Code::NotFound,
            "NOT_FOUND",
            "a deleted story",
        );
        expect_code(stories.delete_story(delete(id, "")).await, Code::NotFound, "NOT_FOUND", "deleting it again");
    }
    expect_invalid(stories.get_story(authed(GetStoryRequest { id: "1".into() }, &alice.token)).await, "id", "bad id");
    assert_eq!(app.count("stories", &[]).await, 0);
}

/// The stories next to `story` in its world's order as the holder of `token` (or an
/// anonymous caller) sees them; `why` says whose view it is.
struct Neighbors<'a> {
    story: &'a Story,
    token: Option<&'a str>,
    previous: Option<&'a Story>,
    next: Option<&'a Story>,
    why: &'static str,
}

async fn neighbors_follow_the_order_and_skip_unreadable_stories(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let stranger = app.register("stranger").await;
    let world = app.create_world(&alice, "Home", Visibility::Public).await;
    let one = app.create_story(&alice, &world.id, "One", Visibility::Public).await;
    let two = app.create_story(&alice, &world.id, "Two", Visibility::Draft).await;
    let three = app.create_story(&alice, &world.id, "Three", Visibility::Public).await;
    let mut stories = app.stories();
    let neighbors = |id: &str, token: Option<&str>| as_caller(GetStoryNeighborsRequest { id: id.into() }, token);
    let id_of = |story: Option<Story>| story.map(|s| s.id);

    let cases = [
        Neighbors {
            story: &one,
            token: Some(alice.token.as_str()),
            previous: None,
            next: Some(&two),
            why: "the first story, for its owner",
        },
        Neighbors {
            story: &two,
            token: Some(alice.token.as_str()),
            previous: Some(&one),
            next: Some(&three),
            why: "the middle story",
        },
        Neighbors {
            story: &three,
            token: Some(alice.token.as_str()),
            previous: Some(&two),
            next: None,
            why: "the last story",
        },
        Neighbors {
            story: &one,
            token: Some(stranger.token.as_str()),
            previous: None,
            next: Some(&three),
            why: "a stranger skips the draft between",
        },
        Neighbors { story: &three, token: None, previous: Some(&one), next: None, why: "so does an anonymous caller" },
    ];
    for Neighbors { story, token, previous, next, why } in cases {
        let found = stories.get_story_neighbors(neighbors(&story.id, token)).await.unwrap().into_inner();
        assert_eq!(id_of(found.previous), previous.map(|s| s.id.clone()), "{why}: previous");
        assert_eq!(id_of(found.next), next.map(|s| s.id.clone()), "{why}: next");
    }
    expect_code(
        stories.get_story_neighbors(neighbors(&two.id, Some(&stranger.token))).await,
        Code::NotFound,
        "NOT_FOUND",
        "the neighbours of a story the caller cannot read",
    );
    expect_code(
        stories.get_story_neighbors(neighbors(&unknown_id(), None)).await,
        Code::NotFound,
        "NOT_FOUND",
        "unknown story",
    );
    expect_invalid(stories.get_story_neighbors(neighbors("zz", None)).await, "id", "a bad id");
}

/// A move refused with `code` and the `ErrorInfo.reason` `want`; `why` says what is wrong with it.
struct MoveCase {
    move_request: MoveStoryRequest,
    code: Code,
    want: &'static str,
    why: &'static str,
}

async fn moves_put_a_story_in_front_of_another_in_one_step(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let other_world = app.create_world(&alice, "Elsewhere", Visibility::Private).await;
    let reader = app.register_member(&alice, &world.id, "reader", ShareRole::Reader).await;
    let mut made = Vec::new();
    for title in ["A", "B", "C", "D"] {
        made.push(app.create_story(&alice, &world.id, title, Visibility::Draft).await);
    }
    let elsewhere = app.create_story(&alice, &other_world.id, "Elsewhere", Visibility::Draft).await;
    let mut stories = app.stories();
    let by_title = |title: &str| made.iter().find(|s| s.title == title).expect("made").clone();
    let request = |id: &str, before: &str, etag: &str| MoveStoryRequest {
        id: id.into(),
        before_id: before.into(),
        etag: etag.into(),
    };
    let titles = |list: &[Story]| list.iter().map(|s| s.title.clone()).collect::<Vec<_>>();

    // D in front of B: B and C move down, A stays.
    let moved =
        stories.move_story(authed(request(&by_title("D").id, &by_title("B").id, &by_title("D").etag), &alice.token));
    let moved = moved.await.expect("move D before B").into_inner();
    assert_eq!(moved.order, by_title("B").order, "D takes B's place");
    let listed = stories.list_stories(authed(list(&world.id, 0, "", ""), &alice.token)).await.unwrap().into_inner();
    assert_eq!(titles(&listed.stories), ["A", "D", "B", "C"]);
    let orders: HashSet<i64> = listed.stories.iter().map(|s| s.order).collect();
    assert_eq!(orders.len(), 4, "no two stories share a place: {:?}", listed.stories);
    let now = |title: &str| listed.stories.iter().find(|s| s.title == title).expect("listed").clone();
    assert_eq!(now("A").etag, by_title("A").etag, "a story in front of the place is untouched");
    assert_ne!(now("B").etag, by_title("B").etag, "a story that moved down has a new etag");

    // To the end, with no story named; then a create still goes last.
    stories.move_story(authed(request(&now("A").id, "", ""), &alice.token)).await.expect("move A to the end");
    app.create_story(&alice, &world.id, "E", Visibility::Draft).await;
    let listed = stories.list_stories(authed(list(&world.id, 0, "", ""), &alice.token)).await.unwrap().into_inner();
    assert_eq!(titles(&listed.stories), ["D", "B", "C", "A", "E"]);

    let b = now("B");
    let stays = stories.move_story(authed(request(&b.id, &b.id, &b.etag), &alice.token)).await.expect("B before B");
    assert_eq!(stays.into_inner(), b, "in front of itself, a story stays where it is, unchanged");
    let cases = [
        MoveCase {
            move_request: request(&b.id, &elsewhere.id, ""),
            code: Code::NotFound,
            want: "REFERENCE_NOT_FOUND",
            why: "in front of a story of another world",
        },
        MoveCase {
            move_request: request(&b.id, "zz", ""),
            code: Code::InvalidArgument,
            want: "INVALID_ARGUMENT",
            why: "a bad before_id",
        },
        MoveCase {
            move_request: request(&b.id, "", &by_title("B").etag),
            code: Code::Aborted,
            want: "ETAG_MISMATCH",
            why: "a stale etag",
        },
        MoveCase {
            move_request: request(&unknown_id(), "", ""),
            code: Code::NotFound,
            want: "NOT_FOUND",
            why: "an unknown story",
        },
    ];
    for MoveCase { move_request, code, want, why } in cases {
        expect_code(stories.move_story(authed(move_request, &alice.token)).await, code, want, why);
    }
    expect_code(
        stories.move_story(authed(request(&b.id, "", ""), &reader.token)).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
        "a reader cannot reorder",
    );
    let unchanged = stories.list_stories(authed(list(&world.id, 0, "", ""), &alice.token)).await.unwrap().into_inner();
    assert_eq!(titles(&unchanged.stories), ["D", "B", "C", "A", "E"], "refused moves changed nothing");
}

/// The contract's highest order (`fabula.options.v1.rules` of `Story.order`).
const LAST_ORDER: i64 = 999_999_999_999_999;

async fn orders_set_near_the_last_one_leave_room_for_more(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let mut stories = app.stories();
    let a = app.create_story(&alice, &world.id, "A", Visibility::Draft).await;
    let b = app.create_story(&alice, &world.id, "B", Visibility::Draft).await;
    let last = Story { id: a.id.clone(), order: LAST_ORDER, ..Story::default() };
    let update = UpdateStoryRequest { story: Some(last), update_mask: mask(&["order"]) };
    let a = stories.update_story(authed(update, &alice.token)).await.expect("A to the last order").into_inner();
    assert_eq!(a.order, LAST_ORDER);

    // Each of these would pass the last order; the world's stories are numbered afresh.
    let c = app.create_story(&alice, &world.id, "C", Visibility::Draft).await;
    let to_end = MoveStoryRequest { id: b.id.clone(), before_id: String::new(), etag: String::new() };
    stories.move_story(authed(to_end, &alice.token)).await.expect("B to the end");
    app.create_story(&alice, &world.id, "D", Visibility::Draft).await;
    let a_last = Story { id: a.id.clone(), order: LAST_ORDER, ..Story::default() };
    let update = UpdateStoryRequest { story: Some(a_last), update_mask: mask(&["order"]) };
    stories.update_story(authed(update, &alice.token)).await.expect("A to the last order again");
    let in_front = MoveStoryRequest { id: a.id.clone(), before_id: c.id.clone(), etag: String::new() };
    stories.move_story(authed(in_front, &alice.token)).await.expect("A in front of C");

    let listed = stories.list_stories(authed(list(&world.id, 0, "", ""), &alice.token)).await.unwrap().into_inner();
    let titles: Vec<&str> = listed.stories.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(titles, ["A", "C", "B", "D"], "the order the writer made: {:?}", listed.stories);
    let orders: HashSet<i64> = listed.stories.iter().map(|s| s.order).collect();
    assert_eq!(orders.len(), 4, "no two stories share a place: {:?}", listed.stories);
    assert!(
        orders.iter().all(|order| (1..=LAST_ORDER).contains(order)),
        "every order is one a client may send back: {orders:?}"
    );
}

async fn deleting_a_world_deletes_its_children(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let doomed = app.create_world(&alice, "Doomed", Visibility::Private).await;
    let kept = app.create_world(&alice, "Kept", Visibility::Private).await;
    app.share(&alice, &doomed.id, &bob, ShareRole::Reader).await;
    for world in [&doomed, &kept] {
        let entity = app
            .entities()
            .create_entity(authed(
                CreateEntityRequest {
                    world_id: world.id.clone(),
                    entity: Some(Entity { name: "Hero".into(), ..Entity::default() }),
                    request_id: String::new(),
                },
                &alice.token,
            ))
            .await
            .unwrap()
            .into_inner();
        let location = app
            .locations()
            .create_location(authed(
                CreateLocationRequest {
                    world_id: world.id.clone(),
                    location: Some(Location { name: "Home".into(), ..Location::default() }),
                    request_id: String::new(),
                },
                &alice.token,
            ))
            .await
            .unwrap()
            .into_inner();
        let linked = Story {
            entity_ids: vec![entity.id],
            location_ids: vec![location.id],
            ..story("Linked", Visibility::Draft)
        };
        app.stories().create_story(authed(create(&world.id, linked, ""), &alice.token)).await.unwrap();
    }
    app.worlds()
        .delete_world(authed(DeleteWorldRequest { id: doomed.id.clone(), etag: String::new() }, &alice.token))
        .await
        .expect("delete the world");
    for table in ["stories", "entities", "locations", "world_shares"] {
        let left = app.count(&format!("{table} WHERE world_id = $1"), &[&doomed.id]).await;
        assert_eq!(left, 0, "{table} of the deleted world are gone");
        let other = app.count(&format!("{table} WHERE world_id = $1"), &[&kept.id]).await;
        assert_eq!(other, i64::from(table != "world_shares"), "{table} of the other world are kept");
    }
    let links: i64 = app.count("story_entities", &[]).await + app.count("story_locations", &[]).await;
    assert_eq!(links, 2, "only the other world's story links remain");
    let remaining: HashSet<_> = [kept.id.clone()].into();
    let listed = app.worlds().list_worlds(authed(Default::default(), &alice.token)).await.unwrap().into_inner();
    assert_eq!(listed.worlds.into_iter().map(|w| w.id).collect::<HashSet<_>>(), remaining);
}
