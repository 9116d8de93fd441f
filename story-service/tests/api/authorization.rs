//! The authorization matrix: who may get, list, update and delete worlds and stories
//! of each visibility. Every cell is checked; all mismatches are reported together.
//!
//! Rules: PUBLIC is readable by anyone, anonymous included; DRAFT and PRIVATE only by
//! the owner, the users the world is shared with, and administrators. Not readable is
//! NOT_FOUND; readable but not writable is PERMISSION_DENIED. A world is updated and
//! deleted by its owner and administrators; a story also by the world's co-authors.
//! Anonymous callers of a method that needs a user are UNAUTHENTICATED. "list" says
//! whether the item appears in the list of its kind.

use crate::common;

use common::*;
use fabula_contracts::pb::story::{
    DeleteStoryRequest, DeleteWorldRequest, GetStoryRequest, GetWorldRequest, ListStoriesRequest, ListWorldsRequest,
    ShareRole, Story, UpdateStoryRequest, UpdateWorldRequest,
    Visibility::{self, Draft, Private, Public},
    World,
};
use prost_types::FieldMask;
use tonic::{Code, Status};

both_databases!(world_authorization_matrix, story_authorization_matrix);

#[derive(Clone, Copy, Debug)]
enum Who {
    Owner,
    CoAuthor,
    Reader,
    Stranger,
    Anonymous,
    Admin,
}
use Who::*;

/// What one call should give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    /// The call succeeds.
    Ok,
    /// The list succeeds and holds the item.
    Listed,
    /// The list succeeds without the item.
    Hidden,
    /// The call fails with this code.
    Fails(Code),
}
const OK: Cell = Cell::Ok;
const LISTED: Cell = Cell::Listed;
const HIDDEN: Cell = Cell::Hidden;
const NOT_FOUND: Cell = Cell::Fails(Code::NotFound);
const DENIED: Cell = Cell::Fails(Code::PermissionDenied);
const UNAUTHENTICATED: Cell = Cell::Fails(Code::Unauthenticated);

#[rustfmt::skip]
const WORLD_MATRIX: &[(Who, Visibility, [Cell; 4])] = &[
    // caller      world      get        list     update           delete
    (Owner,        Draft,   [OK,        LISTED,  OK,              OK]),
    (CoAuthor,     Draft,   [OK,        LISTED,  DENIED,          DENIED]),
    (Reader,       Draft,   [OK,        LISTED,  DENIED,          DENIED]),
    (Stranger,     Draft,   [NOT_FOUND, HIDDEN,  NOT_FOUND,       NOT_FOUND]),
    (Anonymous,    Draft,   [NOT_FOUND, HIDDEN,  UNAUTHENTICATED, UNAUTHENTICATED]),
    (Admin,        Draft,   [OK,        LISTED,  OK,              OK]),

    (Owner,        Private, [OK,        LISTED,  OK,              OK]),
    (CoAuthor,     Private, [OK,        LISTED,  DENIED,          DENIED]),
    (Reader,       Private, [OK,        LISTED,  DENIED,          DENIED]),
    (Stranger,     Private, [NOT_FOUND, HIDDEN,  NOT_FOUND,       NOT_FOUND]),
    (Anonymous,    Private, [NOT_FOUND, HIDDEN,  UNAUTHENTICATED, UNAUTHENTICATED]),
    (Admin,        Private, [OK,        LISTED,  OK,              OK]),

    (Owner,        Public,  [OK,        LISTED,  OK,              OK]),
    (CoAuthor,     Public,  [OK,        LISTED,  DENIED,          DENIED]),
    (Reader,       Public,  [OK,        LISTED,  DENIED,          DENIED]),
    (Stranger,     Public,  [OK,        LISTED,  DENIED,          DENIED]),
    (Anonymous,    Public,  [OK,        LISTED,  UNAUTHENTICATED, UNAUTHENTICATED]),
    (Admin,        Public,  [OK,        LISTED,  OK,              OK]),
];

/// Stories written by the world's owner, in a world of the first visibility.
#[rustfmt::skip]
const STORY_MATRIX: &[(Who, Visibility, Visibility, [Cell; 4])] = &[
    // caller      world    story      get        list       update           delete
    (Owner,        Public,  Draft,   [OK,        LISTED,    OK,              OK]),
    (CoAuthor,     Public,  Draft,   [OK,        LISTED,    OK,              OK]),
    (Reader,       Public,  Draft,   [OK,        LISTED,    DENIED,          DENIED]),
    (Stranger,     Public,  Draft,   [NOT_FOUND, HIDDEN,    NOT_FOUND,       NOT_FOUND]),
    (Anonymous,    Public,  Draft,   [NOT_FOUND, HIDDEN,    UNAUTHENTICATED, UNAUTHENTICATED]),
    (Admin,        Public,  Draft,   [OK,        LISTED,    OK,              OK]),

    (Owner,        Public,  Private, [OK,        LISTED,    OK,              OK]),
    (CoAuthor,     Public,  Private, [OK,        LISTED,    OK,              OK]),
    (Reader,       Public,  Private, [OK,        LISTED,    DENIED,          DENIED]),
    (Stranger,     Public,  Private, [NOT_FOUND, HIDDEN,    NOT_FOUND,       NOT_FOUND]),
    (Anonymous,    Public,  Private, [NOT_FOUND, HIDDEN,    UNAUTHENTICATED, UNAUTHENTICATED]),
    (Admin,        Public,  Private, [OK,        LISTED,    OK,              OK]),

    (Owner,        Public,  Public,  [OK,        LISTED,    OK,              OK]),
    (CoAuthor,     Public,  Public,  [OK,        LISTED,    OK,              OK]),
    (Reader,       Public,  Public,  [OK,        LISTED,    DENIED,          DENIED]),
    (Stranger,     Public,  Public,  [OK,        LISTED,    DENIED,          DENIED]),
    (Anonymous,    Public,  Public,  [OK,        LISTED,    UNAUTHENTICATED, UNAUTHENTICATED]),
    (Admin,        Public,  Public,  [OK,        LISTED,    OK,              OK]),

    // A public story is no way into a private world: its list is NOT_FOUND too.
    (Owner,        Private, Public,  [OK,        LISTED,    OK,              OK]),
    (CoAuthor,     Private, Public,  [OK,        LISTED,    OK,              OK]),
    (Reader,       Private, Public,  [OK,        LISTED,    DENIED,          DENIED]),
    (Stranger,     Private, Public,  [NOT_FOUND, NOT_FOUND, NOT_FOUND,       NOT_FOUND]),
    (Anonymous,    Private, Public,  [NOT_FOUND, NOT_FOUND, UNAUTHENTICATED, UNAUTHENTICATED]),
    (Admin,        Private, Public,  [OK,        LISTED,    OK,              OK]),

    (Stranger,     Private, Draft,   [NOT_FOUND, NOT_FOUND, NOT_FOUND,       NOT_FOUND]),
    (Reader,       Private, Draft,   [OK,        LISTED,    DENIED,          DENIED]),
];

/// The people of a matrix: a world owner, the two users it is shared with, a
/// stranger, and an administrator.
struct Cast {
    owner: TestUser,
    co_author: TestUser,
    reader: TestUser,
    stranger: TestUser,
    admin: TestUser,
}

impl Cast {
    async fn new(app: &TestApp) -> Self {
        Self {
            owner: app.register("owner").await,
            co_author: app.register("co_author").await,
            reader: app.register("reader").await,
            stranger: app.register("stranger").await,
            admin: app.admin().await,
        }
    }

    fn token(&self, who: Who) -> Option<&str> {
        match who {
            Owner => Some(&self.owner.token),
            CoAuthor => Some(&self.co_author.token),
            Reader => Some(&self.reader.token),
            Stranger => Some(&self.stranger.token),
            Admin => Some(&self.admin.token),
            Anonymous => None,
        }
    }

    /// A world of the owner's, shared with the co-author and the reader.
    async fn world(&self, app: &TestApp, visibility: Visibility) -> World {
        let world = app.create_world(&self.owner, &format!("{visibility:?} world"), visibility).await;
        app.share(&self.owner, &world.id, &self.co_author, ShareRole::CoAuthor).await;
        app.share(&self.owner, &world.id, &self.reader, ShareRole::Reader).await;
        world
    }
}

/// What a call gave, as a cell.
fn outcome<T>(result: Result<T, Status>) -> Cell {
    match result {
        Ok(_) => OK,
        Err(status) => Cell::Fails(status.code()),
    }
}

/// What a list gave: whether it holds `id`, or its error.
fn listed(result: Result<Vec<String>, Status>, id: &str) -> Cell {
    match result {
        Ok(ids) if ids.iter().any(|i| i == id) => LISTED,
        Ok(_) => HIDDEN,
        Err(status) => Cell::Fails(status.code()),
    }
}

/// Raised quotas: the owner makes many public worlds and stories here.
async fn spawn_generous(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| {
        s.quotas.public_worlds_user = 100;
        s.quotas.public_stories_user = 100;
    })
    .await
}

fn title_mask() -> Option<FieldMask> {
    Some(FieldMask { paths: vec!["title".into()] })
}

async fn world_authorization_matrix(backend: Backend) {
    let app = spawn_generous(backend).await;
    let cast = Cast::new(&app).await;
    let mut worlds = app.worlds();
    let mut mismatches = Vec::new();
    for &(who, visibility, expected) in WORLD_MATRIX {
        let world = cast.world(&app, visibility).await;
        let token = cast.token(who);
        let get = outcome(worlds.get_world(as_caller(GetWorldRequest { id: world.id.clone() }, token)).await);
        let list = ListWorldsRequest { page_size: 200, ..ListWorldsRequest::default() };
        let list = listed(
            worlds
                .list_worlds(as_caller(list, token))
                .await
                .map(|r| r.into_inner().worlds.into_iter().map(|w| w.id).collect()),
            &world.id,
        );
        let rename = World { id: world.id.clone(), name: "Renamed".into(), ..World::default() };
        let update =
            UpdateWorldRequest { world: Some(rename), update_mask: Some(FieldMask { paths: vec!["name".into()] }) };
        let update = outcome(worlds.update_world(as_caller(update, token)).await);
        let delete = DeleteWorldRequest { id: world.id.clone(), etag: String::new() };
        let delete = outcome(worlds.delete_world(as_caller(delete, token)).await);

        let actual = [get, list, update, delete];
        if actual != expected {
            mismatches.push(format!("{who:?} × {visibility:?} world: expected {expected:?}, got {actual:?}"));
        }
        let still_there = app.count("worlds WHERE id = $1", &[&world.id]).await;
        assert_eq!(still_there, i64::from(delete != OK), "{who:?} × {visibility:?}: the delete did what it said");
    }
    assert!(mismatches.is_empty(), "world matrix cells differ:\n{}", mismatches.join("\n"));
}

async fn story_authorization_matrix(backend: Backend) {
    let app = spawn_generous(backend).await;
    let cast = Cast::new(&app).await;
    let public_world = cast.world(&app, Public).await;
    let private_world = cast.world(&app, Private).await;
    let mut stories = app.stories();
    let mut mismatches = Vec::new();
    for &(who, world_visibility, visibility, expected) in STORY_MATRIX {
        let world = if world_visibility == Public { &public_world } else { &private_world };
        let story = app.create_story(&cast.owner, &world.id, &format!("{visibility:?} story"), visibility).await;
        let token = cast.token(who);
        let get = outcome(stories.get_story(as_caller(GetStoryRequest { id: story.id.clone() }, token)).await);
        let list = ListStoriesRequest { world_id: world.id.clone(), page_size: 200, ..ListStoriesRequest::default() };
        let list = listed(
            stories
                .list_stories(as_caller(list, token))
                .await
                .map(|r| r.into_inner().stories.into_iter().map(|s| s.id).collect()),
            &story.id,
        );
        let retitle = Story { id: story.id.clone(), title: "Retitled".into(), ..Story::default() };
        let update = UpdateStoryRequest { story: Some(retitle), update_mask: title_mask() };
        let update = outcome(stories.update_story(as_caller(update, token)).await);
        let delete = DeleteStoryRequest { id: story.id.clone(), etag: String::new() };
        let delete = outcome(stories.delete_story(as_caller(delete, token)).await);

        let actual = [get, list, update, delete];
        if actual != expected {
            mismatches.push(format!(
                "{who:?} × {visibility:?} story in a {world_visibility:?} world: expected {expected:?}, got {actual:?}"
            ));
        }
        let still_there = app.count("stories WHERE id = $1", &[&story.id]).await;
        assert_eq!(still_there, i64::from(delete != OK), "{who:?} × {visibility:?} story: the delete did what it said");
    }
    assert!(mismatches.is_empty(), "story matrix cells differ:\n{}", mismatches.join("\n"));
}
