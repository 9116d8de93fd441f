//! ListMyStories and the story views: the caller's own stories across worlds, newest
//! change first, and lists that carry a preview and a word count instead of the text,
//! both kept right by every write of the text.

use crate::common;

use common::*;
use fabula_contracts::pb::story::{
    ListMyStoriesRequest, ListRevisionsRequest, ListStoriesRequest, RestoreRevisionRequest, ShareRole, Story,
    StoryFormat, StoryView, UnshareWorldRequest, UpdateStoryRequest, Visibility,
};
use prost_types::{FieldMask, Timestamp};
use tonic::Code;

both_databases!(
    lists_carry_a_preview_and_a_word_count_kept_by_every_write,
    my_stories_are_mine_newest_first_and_filtered,
    my_stories_refuse_bad_input,
);

fn mine(filter: &str, page_size: i32, page_token: &str) -> ListMyStoriesRequest {
    let (filter, page_token) = (filter.into(), page_token.into());
    ListMyStoriesRequest { filter, page_size, page_token, ..ListMyStoriesRequest::default() }
}

fn titles(stories: &[Story]) -> Vec<&str> {
    stories.iter().map(|s| s.title.as_str()).collect()
}

async fn list_mine(app: &TestApp, token: &str, request: ListMyStoriesRequest) -> Vec<Story> {
    app.stories().list_my_stories(authed(request, token)).await.expect("my stories").into_inner().stories
}

async fn rewrite(app: &TestApp, token: &str, story: &Story, content: &str) -> Story {
    let story = Story { content: content.into(), ..story.clone() };
    let mask = Some(FieldMask { paths: vec!["content".into()] });
    let request = UpdateStoryRequest { story: Some(story), update_mask: mask };
    app.stories().update_story(authed(request, token)).await.expect("rewrite the story").into_inner()
}

async fn lists_carry_a_preview_and_a_word_count_kept_by_every_write(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let markdown = Story {
        title: "Road".into(),
        content: format!("# The *Road*\n\n{}", "word ".repeat(300)),
        format: StoryFormat::Markdown.into(),
        ..Story::default()
    };
    let created = app.create_story_from(&alice, &world.id, markdown).await;
    assert_eq!(created.word_count, 302, "markdown marks are not words");
    assert!(created.preview.starts_with("The Road word word"), "{}", created.preview);
    assert_eq!(created.preview.chars().count(), 201, "200 characters and an ellipsis");

    let list = |view: StoryView| ListStoriesRequest {
        world_id: world.id.clone(),
        view: view.into(),
        ..ListStoriesRequest::default()
    };
    let mut stories = app.stories();
    for (view, with_text) in [(StoryView::Unspecified, false), (StoryView::Basic, false), (StoryView::Full, true)] {
        let listed = stories.list_stories(authed(list(view), &alice.token)).await.unwrap().into_inner().stories;
        let expected =
            Story { content: if with_text { created.content.clone() } else { String::new() }, ..created.clone() };
        assert_eq!(listed, vec![expected], "{view:?}: all but the text, which only FULL carries");
    }

    let rewritten = rewrite(&app, &alice.token, &created, "Three short words.").await;
    assert_eq!((rewritten.word_count, rewritten.preview.as_str()), (3, "Three short words."), "an update counts again");

    let listing = ListRevisionsRequest { resource_id: created.id.clone(), ..Default::default() };
    let history = app.revisions().list_revisions(authed(listing, &alice.token)).await.unwrap().into_inner();
    let first = history.revisions.last().expect("the create's revision");
    let restore = RestoreRevisionRequest { id: first.id.clone(), etag: rewritten.etag.clone() };
    app.revisions().restore_revision(authed(restore, &alice.token)).await.expect("restore the first text");
    let listed = list_mine(&app, &alice.token, mine("", 0, "")).await;
    assert_eq!((listed[0].word_count, listed[0].preview.as_str()), (302, created.preview.as_str()), "a restore too");
    let stored = app.count("stories WHERE word_count = 302 AND preview = $1", &[&created.preview]).await;
    assert_eq!(stored, 1, "the count is a column, not counted per read");
}

async fn my_stories_are_mine_newest_first_and_filtered(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let home = app.create_world(&alice, "Home", Visibility::Private).await;
    let away = app.create_world(&alice, "Away", Visibility::Public).await;
    let bob = app.register_member(&alice, &home.id, "bob", ShareRole::CoAuthor).await;
    let first = app.create_story(&alice, &home.id, "First", Visibility::Draft).await;
    app.create_story(&alice, &away.id, "Public", Visibility::Public).await;
    let bobs = app.create_story(&bob, &home.id, "Bob's draft", Visibility::Draft).await;
    let last = app.create_story(&alice, &away.id, "Last draft", Visibility::Draft).await;
    rewrite(&app, &alice.token, &first, "First, edited").await;

    let all = list_mine(&app, &alice.token, mine("", 0, "")).await;
    assert_eq!(titles(&all), ["First", "Last draft", "Public"], "Alice's own, newest change first");
    assert!(all.iter().all(|s| s.content.is_empty()), "BASIC by default");
    let full = ListMyStoriesRequest { view: StoryView::Full.into(), ..mine("", 1, "") };
    assert_eq!(list_mine(&app, &alice.token, full).await[0].content, "First, edited", "FULL asked for");
    let cases = [
        (mine("visibility = DRAFT", 0, ""), vec!["First", "Last draft"], "my drafts"),
        (mine("visibility = DRAFT", 1, ""), vec!["First"], "my latest draft"),
        (
            ListMyStoriesRequest { world_id: away.id.clone(), ..mine("", 0, "") },
            vec!["Last draft", "Public"],
            "a world",
        ),
        (
            ListMyStoriesRequest { updated_after: last.update_time, ..mine("", 0, "") },
            vec!["First", "Last draft"],
            "changed since a time (inclusive)",
        ),
        (
            ListMyStoriesRequest { updated_before: last.update_time, ..mine("", 0, "") },
            vec!["Public"],
            "changed before a time",
        ),
    ];
    for (request, expected, why) in cases {
        assert_eq!(titles(&list_mine(&app, &alice.token, request).await), expected, "{why}");
    }

    let (mut paged, mut token) = (Vec::new(), String::new());
    loop {
        let page = app.stories().list_my_stories(authed(mine("", 1, &token), &alice.token)).await.unwrap();
        let page = page.into_inner();
        paged.extend(page.stories);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(titles(&paged), titles(&all), "pages of one go on where they left off");

    assert_eq!(titles(&list_mine(&app, &bob.token, mine("", 0, "")).await), ["Bob's draft"], "never another's draft");
    assert_eq!(bobs.owner_id, bob.id);
    let unshare = UnshareWorldRequest { world_id: home.id.clone(), user_id: bob.id.clone() };
    app.worlds().unshare_world(authed(unshare, &alice.token)).await.expect("unshare");
    assert!(
        list_mine(&app, &bob.token, mine("", 0, "")).await.is_empty(),
        "a story in a private world no longer shared is not listed: its world is hidden"
    );
    expect_code(
        app.stories().list_my_stories(mine("", 0, "")).await,
        Code::Unauthenticated,
        "TOKEN_MISSING",
        "anonymous",
    );
}

async fn my_stories_refuse_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    for title in ["One", "Two"] {
        app.create_story(&alice, &world.id, title, Visibility::Draft).await;
    }
    let page = app.stories().list_my_stories(authed(mine("", 1, ""), &alice.token)).await.unwrap().into_inner();
    let token = page.next_page_token;
    let far = Some(Timestamp { seconds: i64::MAX, nanos: 0 });
    let bad = vec![
        BadInput { request: mine("", -1, ""), field: "page_size", why: "a negative page size" },
        BadInput { request: mine("owner_id = x", 0, ""), field: "filter", why: "a field that cannot be filtered on" },
        BadInput { request: mine("visibility = SECRET", 0, ""), field: "filter", why: "an unknown visibility" },
        BadInput { request: mine("", 0, "%%%"), field: "page_token", why: "a page token the service never made" },
        BadInput {
            request: mine("visibility = DRAFT", 1, &token),
            field: "page_token",
            why: "a page token reused with another filter",
        },
        BadInput {
            request: ListMyStoriesRequest { world_id: "nope".into(), ..mine("", 0, "") },
            field: "world_id",
            why: "a bad world id",
        },
        BadInput {
            request: ListMyStoriesRequest { view: 9, ..mine("", 0, "") },
            field: "view",
            why: "an unknown view",
        },
        BadInput {
            request: ListMyStoriesRequest { updated_after: far, ..mine("", 0, "") },
            field: "updated_after",
            why: "a time past the year 9999",
        },
    ];
    for BadInput { request, field, why } in bad {
        expect_invalid(app.stories().list_my_stories(authed(request, &alice.token)).await, field, why);
    }
    let bad_view = ListStoriesRequest { world_id: world.id.clone(), view: 9, ..ListStoriesRequest::default() };
    expect_invalid(app.stories().list_stories(authed(bad_view, &alice.token)).await, "view", "ListStories too");
    let oversize = list_mine(&app, &alice.token, mine("", 100_000, "")).await;
    assert_eq!(oversize.len(), 2, "an oversize page is lowered to the largest, not refused");
}
