//! No database text reaches a caller: with the service's database broken under it, a
//! call is an opaque INTERNAL with an `ErrorInfo`, and the service recovers once the
//! database does.

use crate::common;

use common::*;
use fabula_contracts::pb::story::{CreateStoryRequest, GetStoryRequest, ListStoriesRequest, Story, Visibility};
use tonic::{Code, Status};
use tonic_types::StatusExt;

both_databases!(a_broken_database_is_an_opaque_internal_error);

/// What a database error would show: table and driver names, SQL, the error's wording.
const LEAKS: &[&str] = &[
    "stories",
    "no such table",
    "relation",
    "does not exist",
    "sqlx",
    "sqlite",
    "postgres",
    "database",
    "select",
    "insert",
    "error returned",
];

async fn a_broken_database_is_an_opaque_internal_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let story = app.create_story(&alice, &world.id, "Before", Visibility::Private).await;

    // The table is renamed away under the running service.
    sqlx::query("ALTER TABLE stories RENAME TO stories_elsewhere").execute(app.db().await).await.expect("rename");
    let during = Story { title: "During".into(), ..Story::default() };
    let create = CreateStoryRequest { world_id: world.id.clone(), story: Some(during), request_id: String::new() };
    let list = ListStoriesRequest { world_id: world.id.clone(), ..ListStoriesRequest::default() };
    let calls = [
        ("GetStory", get_story(&app, &alice, &story.id).await.map(drop)),
        ("CreateStory", app.stories().create_story(authed(create, &alice.token)).await.map(drop)),
        ("ListStories", app.stories().list_stories(authed(list, &alice.token)).await.map(drop)),
    ];
    for (what, result) in calls {
        let status = expect_code(result, Code::Internal, "INTERNAL", what);
        assert_leaks_nothing(&status, what);
    }

    sqlx::query("ALTER TABLE stories_elsewhere RENAME TO stories").execute(app.db().await).await.expect("rename back");
    let again = get_story(&app, &alice, &story.id).await.expect("the service recovers with its database");
    assert_eq!(again.title, "Before");
}

async fn get_story(app: &TestApp, user: &TestUser, id: &str) -> Result<Story, Status> {
    let request = authed(GetStoryRequest { id: id.into() }, &user.token);
    app.stories().get_story(request).await.map(tonic::Response::into_inner)
}

/// Checks that neither the message nor the `ErrorInfo` of `status` shows database text.
#[track_caller]
fn assert_leaks_nothing(status: &Status, what: &str) {
    let info = status.get_details_error_info().expect("an ErrorInfo");
    let shown = [status.message().to_owned(), info.reason, info.domain]
        .into_iter()
        .chain(info.metadata.into_iter().flat_map(|(key, value)| [key, value]))
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    for leak in LEAKS {
        assert!(!shown.contains(leak), "{what}: the caller sees {leak:?} in {shown:?} ({status:?})");
    }
}
