//! StatsService: a writer's counts and quotas and the site's counts follow every write
//! that changes them (create, delete, move, visibility, restore, a world's delete), and
//! only administrators read the site's.

use crate::common;

use common::*;
use fabula_contracts::pb::story::{
    CreateEntityRequest, CreateEventRequest, DeleteStoryRequest, DeleteWorldRequest, Entity, Event, GetMyStatsRequest,
    GetSiteStatsRequest, ListRevisionsRequest, MoveStoryRequest, MyStats, Quota, RestoreRevisionRequest, ShareRole,
    SiteStats, Story, UpdateStoryRequest, Visibility, VisibilityCounts,
};
use prost_types::FieldMask;
use tonic::Code;

both_databases!(stats_follow_every_write, site_stats_are_for_administrators);

fn counts(draft: i64, private: i64, public: i64) -> Option<VisibilityCounts> {
    Some(VisibilityCounts { draft, private, public, total: draft + private + public })
}

async fn my_stats(app: &TestApp, token: &str) -> MyStats {
    app.stats().get_my_stats(authed(GetMyStatsRequest {}, token)).await.expect("my stats").into_inner()
}

async fn site_stats(app: &TestApp, token: &str) -> SiteStats {
    app.stats().get_site_stats(authed(GetSiteStatsRequest {}, token)).await.expect("site stats").into_inner()
}

/// Alice's stories and words, as `(stories, words)`.
async fn stories_and_words(app: &TestApp, token: &str) -> (Option<VisibilityCounts>, i64) {
    let stats = my_stats(app, token).await;
    (stats.stories, stats.words)
}

async fn stats_follow_every_write(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let empty = my_stats(&app, &alice.token).await;
    assert_eq!((empty.worlds, empty.stories, empty.words), (counts(0, 0, 0), counts(0, 0, 0), 0), "nothing yet");

    let home = app.create_world(&alice, "Home", Visibility::Private).await;
    let away = app.create_world(&alice, "Away", Visibility::Public).await;
    let bob = app.register_member(&alice, &home.id, "bob", ShareRole::CoAuthor).await;
    let text = |words: usize| "word ".repeat(words);
    let story = |title: &str, words, visibility: Visibility| Story {
        title: title.into(),
        content: text(words),
        visibility: visibility.into(),
        ..Story::default()
    };
    let one = app.create_story_from(&alice, &home.id, story("One", 10, Visibility::Draft)).await;
    let two = app.create_story_from(&alice, &home.id, story("Two", 5, Visibility::Public)).await;
    app.create_story_from(&bob, &home.id, story("Bob's", 7, Visibility::Draft)).await;
    let entity = Entity { name: "Hero".into(), ..Entity::default() };
    let request = CreateEntityRequest { world_id: home.id.clone(), entity: Some(entity), request_id: String::new() };
    app.entities().create_entity(authed(request, &bob.token)).await.expect("Bob adds an entity to Alice's world");
    let event = Event { title: "Battle".into(), ..Event::default() };
    let request = CreateEventRequest { world_id: away.id.clone(), event: Some(event), request_id: String::new() };
    app.events().create_event(authed(request, &alice.token)).await.expect("an event");

    let stats = my_stats(&app, &alice.token).await;
    assert_eq!((stats.worlds, stats.stories, stats.words), (counts(0, 1, 1), counts(1, 0, 1), 15));
    assert_eq!((stats.entities, stats.events), (1, 1), "what is in Alice's worlds, whoever wrote it");
    assert_eq!(stats.public_worlds, Some(Quota { used: 1, limit: 1, left: 0, unlimited: false }));
    assert_eq!(stats.public_stories, Some(Quota { used: 1, limit: 20, left: 19, unlimited: false }));
    assert_eq!(stories_and_words(&app, &bob.token).await, (counts(1, 0, 0), 7), "Bob's own story only");

    let private = Story { id: one.id.clone(), visibility: Visibility::Private.into(), ..Story::default() };
    let mask = Some(FieldMask { paths: vec!["visibility".into(), "content".into()] });
    let request = UpdateStoryRequest { story: Some(Story { content: text(3), ..private }), update_mask: mask };
    app.stories().update_story(authed(request, &alice.token)).await.expect("a draft made private, shorter");
    assert_eq!(stories_and_words(&app, &alice.token).await, (counts(0, 1, 1), 8), "a visibility change and an edit");

    let request = MoveStoryRequest { id: two.id.clone(), before_id: one.id.clone(), etag: String::new() };
    app.stories().move_story(authed(request, &alice.token)).await.expect("a move");
    assert_eq!(stories_and_words(&app, &alice.token).await, (counts(0, 1, 1), 8), "a move changes no count");

    let request = DeleteStoryRequest { id: two.id.clone(), etag: String::new() };
    app.stories().delete_story(authed(request, &alice.token)).await.expect("a delete");
    assert_eq!(stories_and_words(&app, &alice.token).await, (counts(0, 1, 0), 3), "a delete");

    let listing = ListRevisionsRequest { resource_id: two.id.clone(), ..Default::default() };
    let history = app.revisions().list_revisions(authed(listing, &alice.token)).await.unwrap().into_inner();
    let restore = RestoreRevisionRequest { id: history.revisions[0].id.clone(), etag: String::new() };
    app.revisions().restore_revision(authed(restore, &alice.token)).await.expect("the delete undone");
    assert_eq!(stories_and_words(&app, &alice.token).await, (counts(0, 1, 1), 8), "a restore");

    let request = DeleteWorldRequest { id: home.id.clone(), ..Default::default() };
    app.worlds().delete_world(authed(request, &alice.token)).await.expect("the world goes, with its stories");
    let stats = my_stats(&app, &alice.token).await;
    assert_eq!((stats.worlds, stats.stories, stats.words, stats.entities), (counts(0, 0, 1), counts(0, 0, 0), 0, 0));
    assert_eq!(stories_and_words(&app, &bob.token).await, (counts(0, 0, 0), 0), "Bob's story went with the world");
    expect_code(
        app.stats().get_my_stats(GetMyStatsRequest {}).await,
        Code::Unauthenticated,
        "TOKEN_MISSING",
        "anonymous",
    );
}

async fn site_stats_are_for_administrators(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Public).await;
    for (title, visibility) in [("A", Visibility::Draft), ("B", Visibility::Public), ("C", Visibility::Public)] {
        app.create_story(&alice, &world.id, title, visibility).await;
    }
    let stats = site_stats(&app, &admin.token).await;
    assert_eq!((stats.worlds, stats.stories), (counts(0, 0, 1), counts(1, 0, 2)));
    assert_eq!((stats.users_by_role.get("ADMIN"), stats.users_by_role.get("USER")), (Some(&1), Some(&1)));
    assert_eq!((stats.active_users, stats.disabled_users, stats.new_users_last_7_days), (2, 0, 2));
    let mine = my_stats(&app, &admin.token).await;
    assert!(mine.public_worlds.is_some_and(|q| q.unlimited), "administrators have no quota");

    expect_code(
        app.stats().get_site_stats(authed(GetSiteStatsRequest {}, &alice.token)).await,
        Code::PermissionDenied,
        "ADMIN_ONLY",
        "a user",
    );
    expect_code(
        app.stats().get_site_stats(GetSiteStatsRequest {}).await,
        Code::Unauthenticated,
        "TOKEN_MISSING",
        "anonymous",
    );
}
