//! StoryService: the stories of a world, in the world's order, with the entities
//! and locations they link to ([`crate::links`]).
//!
//! A story's `order` places it in its world. A create without one goes last: it
//! takes the next value of `worlds.story_seq`, bumped inside the create's
//! transaction. That bump holds the world's row lock until commit, so concurrent
//! creates in one world queue there on PostgreSQL (SQLite has a single writer) and
//! never share an order. An explicit order is kept as sent and raises `story_seq`.
//! MoveStory puts a story in front of another in one transaction, moving the
//! stories from that place on one down.
//!
//! Who reads a story is [`crate::access`]'s decision (`can_read_story` one at a time,
//! `push_readable_stories` for lists and neighbours): a story the caller may not
//! read is NOT_FOUND, whatever its world.

use fabula_contracts::pb::story::{
    CreateStoryRequest, DeleteStoryRequest, GetStoryNeighborsRequest, GetStoryNeighborsResponse, GetStoryRequest,
    ListMyStoriesRequest, ListMyStoriesResponse, ListStoriesRequest, ListStoriesResponse, MoveStoryRequest,
    ResourceKind, RevisionKind, Story, StoryFormat, StoryView, UpdateStoryRequest, Visibility, snapshot::Resource,
    story_service_server::StoryService,
};
use fabula_runtime::rules::Checks;
use fabula_runtime::{
    auth::{Caller, caller},
    errors::{self, FieldViolations},
    rules::{self, story::story as declared},
};
use prost_types::Timestamp;
use std::sync::LazyLock;

use fabula_store::{
    db::now_micros,
    error::{Error, Result, etag_mismatch, invalid, not_found},
    filter,
    pagination::{Bind, Key, Listing, Page, Sql},
};
use sqlx::{Any, AnyConnection, Row, Transaction, any::AnyRow};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    State,
    access::{self, WorldAccess, world_access},
    children::{self, Begun, CreateTarget, Located, Stamps, WorldChild},
    domain,
    links::{self, Linkable, Links, Owner, Scope, Target},
    quotas::{self, Public},
    revisions::{self, Write, record::to_micros},
    update::{self, Mask, check_etag},
    words::{self, Measured},
};

const UPDATABLE: &[&str] = rules::story::update_story_request::UPDATE_MASK.paths;
const LISTING: Listing = Listing {
    page_size: &rules::story::list_stories_request::PAGE_SIZE,
    page_token: &rules::story::list_stories_request::PAGE_TOKEN,
    filter: &rules::story::list_stories_request::FILTER,
    columns: &[("visibility", "t.visibility"), ("genre", "t.genre"), ("owner_id", "t.owner_id")],
};
/// The most story text one list page carries, well under the 4 MiB message limit.
const PAGE_BUDGET: usize = 3 * 1024 * 1024;
/// The world's order: the sort of lists and neighbours, the id breaking ties.
const ORDER: &[&str] = &["t.sort_order", "t.id"];
const MINE: Listing = Listing {
    page_size: &rules::story::list_my_stories_request::PAGE_SIZE,
    page_token: &rules::story::list_my_stories_request::PAGE_TOKEN,
    filter: &rules::story::list_my_stories_request::FILTER,
    columns: &[("visibility", "t.visibility"), ("genre", "t.genre")],
};
/// Newest change first, the id breaking ties: the sort of ListMyStories.
const NEWEST: &[&str] = &["t.update_time", "t.id"];
/// [`WorldChild::COLUMNS`] with an empty text: what a BASIC list reads.
static BASIC_COLUMNS: LazyLock<String> = LazyLock::new(|| Story::COLUMNS.replace("t.content", "''"));

/// The columns a list in `view` reads.
fn columns(view: StoryView) -> &'static str {
    match view {
        StoryView::Full => Story::COLUMNS,
        _ => BASIC_COLUMNS.as_str(),
    }
}

/// The `view` of a request: `default` when unset, INVALID_ARGUMENT when unknown.
fn view(sent: i32, default: StoryView) -> Result<StoryView> {
    domain::enumeration(sent, default).map_err(|e| invalid("view", e))
}

pub struct StoriesApi(pub State);

impl WorldChild for Story {
    const TABLE: &'static str = "stories";
    const NOUN: &'static str = "story";
    const KIND: ResourceKind = ResourceKind::Story;
    const COLUMNS: &'static str = "t.id, t.world_id, t.owner_id, t.title, t.content, t.format, t.genre, \
                                   t.visibility, t.sort_order, t.version, t.create_time, t.update_time, t.summary, \
                                   t.word_count, t.preview";

    /// The story without its links: see [`links::attach`] and [`WorldChild::read_extra`].
    fn from_row(row: &AnyRow) -> Result<Self> {
        let Stamps { etag, create_time, update_time } = Stamps::read(row, 9)?;
        Ok(Story {
            id: row.try_get(0)?,
            world_id: row.try_get(1)?,
            owner_id: row.try_get(2)?,
            title: row.try_get(3)?,
            content: row.try_get(4)?,
            format: StoryFormat::from_str_name(&row.try_get::<String, _>(5)?).unwrap_or(StoryFormat::Plain).into(),
            genre: row.try_get(6)?,
            summary: row.try_get(12)?,
            visibility: Visibility::from_str_name(&row.try_get::<String, _>(7)?).unwrap_or(Visibility::Draft).into(),
            order: row.try_get(8)?,
            word_count: i32::try_from(row.try_get::<Option<i64>, _>(13)?.unwrap_or(0)).unwrap_or(i32::MAX),
            preview: row.try_get::<Option<String>, _>(14)?.unwrap_or_default(),
            entity_ids: Vec::new(),
            location_ids: Vec::new(),
            etag,
            create_time,
            update_time,
        })
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn extra_columns() -> String {
        links::aggregated_columns(Owner::Story)
    }

    fn read_extra(&mut self, row: &AnyRow, first: usize) -> Result<()> {
        links::fill_from_columns(self, row, first)
    }
}

impl Linkable for Story {
    const OWNER: Owner = Owner::Story;

    fn id(&self) -> &str {
        &self.id
    }

    fn link_ids(&mut self, target: Target) -> &mut Vec<String> {
        match target {
            Target::Entity => &mut self.entity_ids,
            _ => &mut self.location_ids,
        }
    }
}

/// The fields of a story a caller may set, validated.
#[derive(Debug, Default, PartialEq)]
struct StoryFields {
    title: String,
    content: String,
    format: StoryFormat,
    genre: String,
    summary: String,
    visibility: Visibility,
    /// As sent: 0 places the story last.
    order: i64,
}

impl StoryFields {
    /// Validates every field of `story`, filing each problem under `story.<field>`.
    fn check(story: &Story, violations: &mut FieldViolations) -> Self {
        Self {
            title: violations.check("story.title", rules::text(&story.title, &declared::TITLE)).unwrap_or_default(),
            content: violations
                .check("story.content", rules::text(&story.content, &declared::CONTENT))
                .unwrap_or_default(),
            format: violations
                .check("story.format", domain::enumeration(story.format, StoryFormat::Plain))
                .unwrap_or(StoryFormat::Plain),
            genre: violations.check("story.genre", rules::text(&story.genre, &declared::GENRE)).unwrap_or_default(),
            summary: violations
                .check("story.summary", rules::text(&story.summary, &declared::SUMMARY))
                .unwrap_or_default(),
            visibility: violations
                .check("story.visibility", domain::enumeration(story.visibility, Visibility::Draft))
                .unwrap_or(Visibility::Draft),
            order: violations.check("story.order", declared::ORDER.check_int(story.order)).unwrap_or_default(),
        }
    }

    fn measured(&self) -> Measured {
        words::measure(&self.content, self.format)
    }
}

/// Whether `path` of `story` was sent, for an update without a mask.
fn populated(story: &Story, path: &str) -> bool {
    match path {
        "title" => !story.title.is_empty(),
        "content" => !story.content.is_empty(),
        "format" => story.format != 0,
        "genre" => !story.genre.is_empty(),
        "summary" => !story.summary.is_empty(),
        "visibility" => story.visibility != 0,
        "order" => story.order != 0,
        "entity_ids" => !story.entity_ids.is_empty(),
        "location_ids" => !story.location_ids.is_empty(),
        _ => false,
    }
}

/// `current` with the fields of `mask` taken from `sent`.
fn merge(sent: Story, current: Story, mask: &Mask) -> Story {
    Story {
        title: if mask.has("title") { sent.title } else { current.title },
        content: if mask.has("content") { sent.content } else { current.content },
        format: if mask.has("format") { sent.format } else { current.format },
        genre: if mask.has("genre") { sent.genre } else { current.genre },
        summary: if mask.has("summary") { sent.summary } else { current.summary },
        visibility: if mask.has("visibility") { sent.visibility } else { current.visibility },
        order: if mask.has("order") { sent.order } else { current.order },
        ..current
    }
}

/// Roughly what `story` adds to an encoded list page.
fn weight(story: &Story) -> usize {
    story.content.len() + story.summary.len() + story.title.len() + 256
}

/// The key of `story` in the world's order.
fn sort_key(story: &Story) -> Vec<Key> {
    vec![Key::Int(story.order), Key::Text(story.id.clone())]
}

/// The key of `story` in ListMyStories' order, newest change first.
fn newest_key(story: &Story) -> Vec<Key> {
    vec![Key::Int(story.update_time.map_or(0, to_micros)), Key::Text(story.id.clone())]
}

/// The time `field` as stored (microseconds), when sent: INVALID_ARGUMENT outside
/// the years 1 to 9999 that a Timestamp may hold.
fn instant(field: &str, sent: Option<Timestamp>) -> Result<Option<i64>> {
    const FIRST: i64 = -62_135_596_800;
    const LAST: i64 = 253_402_300_799;
    match sent {
        Some(time) if !(FIRST..=LAST).contains(&time.seconds) || !(0..1_000_000_000).contains(&time.nanos) => {
            Err(invalid(field, "is not a time between the years 1 and 9999"))
        }
        sent => Ok(sent.map(to_micros)),
    }
}

/// Story `id` and where it stands, when the caller may read it; NOT_FOUND when there
/// is no such story or it is hidden from the caller, so existence never leaks.
async fn readable(conn: &mut AnyConnection, caller: &Caller, id: Uuid) -> Result<(Located, Story)> {
    let (located, story) = children::locate_with::<Story>(&mut *conn, caller, id).await?;
    let author =
        Uuid::try_parse(&story.owner_id).map_err(|_| Error::Internal(format!("bad owner id of story {id}")))?;
    let visibility = Visibility::try_from(story.visibility).unwrap_or(Visibility::Draft);
    if !located.access.can_read_story(caller, visibility, author) {
        return Err(not_found("story"));
    }
    Ok((located, story))
}

/// The highest order a story may have, as the contract declares it.
fn last_order() -> i64 {
    declared::ORDER.maximum.unwrap_or(i64::MAX)
}

/// The order of a story placed at `requested` in world `world_id`: as requested, or
/// after every story when 0. The `story_seq` bump locks the world's row until the
/// transaction ends, so creates in one world never share an order. When the place
/// after every story would pass the last order, the world's stories but `moving` (the
/// story being placed, when it exists) are numbered afresh first.
pub(crate) async fn place(
    conn: &mut AnyConnection,
    world_id: Uuid,
    requested: i64,
    moving: Option<Uuid>,
) -> Result<i64> {
    let seq: i64 = sqlx::query(
        "UPDATE worlds SET story_seq = CASE WHEN $2 = 0 THEN story_seq + 1 WHEN story_seq < $2 THEN $2 \
         ELSE story_seq END WHERE id = $1 RETURNING story_seq",
    )
    .bind(world_id.to_string())
    .bind(requested)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    match requested {
        0 if seq > last_order() => renumber(conn, world_id, moving).await,
        0 => Ok(seq),
        requested => Ok(requested),
    }
}

/// Numbers the stories of world `world_id` but `moving` 1, 2, 3… in their order (their
/// versions change with it), so that orders set by hand near the last one leave room
/// again. The world's `story_seq` becomes the place after them, kept for the story
/// being placed or made room for, and returned.
async fn renumber(conn: &mut AnyConnection, world_id: Uuid, moving: Option<Uuid>) -> Result<i64> {
    let moving = moving.map(|id| id.to_string()).unwrap_or_default();
    sqlx::query(
        "UPDATE stories SET sort_order = numbered.place, version = stories.version + 1, update_time = $1 \
         FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY sort_order, id) AS place FROM stories \
         WHERE world_id = $2 AND id <> $3) AS numbered WHERE stories.id = numbered.id",
    )
    .bind(now_micros())
    .bind(world_id.to_string())
    .bind(&moving)
    .execute(&mut *conn)
    .await?;
    let last: i64 = sqlx::query(
        "UPDATE worlds SET story_seq = (SELECT COUNT(*) FROM stories WHERE world_id = $1 AND id <> $2) + 1 \
         WHERE id = $1 RETURNING story_seq",
    )
    .bind(world_id.to_string())
    .bind(&moving)
    .fetch_one(conn)
    .await?
    .try_get(0)?;
    Ok(last)
}

/// Frees the place of story `before` in world `world_id` for story `moving`: `before`
/// and every story after it move one down (their versions change with their order).
/// Returns the freed place. The `story_seq` bump comes first, so it holds the world's
/// row lock for the rest of the transaction, and stays past every order; when that
/// passes the last order, the stories are numbered afresh first.
async fn make_room(conn: &mut AnyConnection, world_id: Uuid, before: Uuid, moving: Uuid) -> Result<i64> {
    let seq: i64 = sqlx::query("UPDATE worlds SET story_seq = story_seq + 1 WHERE id = $1 RETURNING story_seq")
        .bind(world_id.to_string())
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    if seq > last_order() {
        renumber(conn, world_id, Some(moving)).await?;
    }
    let place: Option<i64> = sqlx::query_scalar("SELECT sort_order FROM stories WHERE id = $1 AND world_id = $2")
        .bind(before.to_string())
        .bind(world_id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    let place = place.ok_or_else(|| errors::missing_reference("before_id", "is not a story of this story's world"))?;
    sqlx::query(
        "UPDATE stories SET sort_order = sort_order + 1, version = version + 1, update_time = $1 \
         WHERE world_id = $2 AND sort_order >= $3 AND id <> $4",
    )
    .bind(now_micros())
    .bind(world_id.to_string())
    .bind(place)
    .bind(moving.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(place)
}

/// The insert of a new story, returning its columns; written once. RETURNING cannot
/// name the columns through a table alias, so they lose their `t.`.
static INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO stories (id, world_id, owner_id, title, content, format, genre, visibility, sort_order, \
         version, create_time, update_time, summary, word_count, preview) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10, $11, $12, $13) RETURNING {}",
        Story::COLUMNS.replace("t.", "")
    )
});

/// Stores the new story `id` of `owner` in world `world_id` at `order`, and returns it
/// as stored (without links).
async fn insert(
    conn: &mut AnyConnection,
    id: Uuid,
    world_id: Uuid,
    owner: Uuid,
    fields: &StoryFields,
    order: i64,
) -> Result<Story> {
    let measured = fields.measured();
    let row = sqlx::query(sqlx::AssertSqlSafe(INSERT.as_str()))
        .bind(id.to_string())
        .bind(world_id.to_string())
        .bind(owner.to_string())
        .bind(&fields.title)
        .bind(&fields.content)
        .bind(fields.format.as_str_name())
        .bind(&fields.genre)
        .bind(fields.visibility.as_str_name())
        .bind(order)
        .bind(now_micros())
        .bind(&fields.summary)
        .bind(measured.word_count)
        .bind(&measured.preview)
        .fetch_one(conn)
        .await?;
    Story::from_row(&row)
}

/// Writes `fields` over story `id` if it is still at `version`; ABORTED otherwise.
async fn overwrite(conn: &mut AnyConnection, id: Uuid, version: i64, fields: &StoryFields) -> Result<()> {
    let measured = fields.measured();
    let updated = sqlx::query(
        "UPDATE stories SET title = $1, content = $2, format = $3, genre = $4, visibility = $5, sort_order = $6, \
         version = version + 1, update_time = $7, summary = $10, word_count = $11, preview = $12 \
         WHERE id = $8 AND version = $9",
    )
    .bind(&fields.title)
    .bind(&fields.content)
    .bind(fields.format.as_str_name())
    .bind(&fields.genre)
    .bind(fields.visibility.as_str_name())
    .bind(fields.order)
    .bind(now_micros())
    .bind(id.to_string())
    .bind(version)
    .bind(&fields.summary)
    .bind(measured.word_count)
    .bind(&measured.preview)
    .execute(conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(etag_mismatch("story"));
    }
    Ok(())
}

/// Commits a write of story `id` and returns the story as it now is.
async fn commit(mut tx: Transaction<'static, Any>, id: Uuid) -> Result<Story> {
    let story: Story = children::fetch(&mut *tx, id).await?;
    let story = links::attach_one(&mut *tx, story).await?;
    tx.commit().await?;
    Ok(story)
}

/// Which side of a story in the world's order.
#[derive(Clone, Copy, Debug)]
enum Side {
    Before,
    After,
}

/// The story the caller may read just before or after `key` in the world's order.
async fn neighbor(
    conn: &mut AnyConnection,
    caller: &Caller,
    access: &WorldAccess,
    key: &[Key],
    side: Side,
) -> Result<Option<Story>> {
    let mut sql = Sql::new(&format!("SELECT {} FROM stories t WHERE t.world_id = ", Story::COLUMNS));
    sql.bind(Bind::Text(access.world_id.to_string()));
    access.push_readable_stories(caller, &mut sql);
    match side {
        Side::Before => sql.push_before(ORDER, key).push(" ORDER BY t.sort_order DESC, t.id DESC LIMIT 1"),
        Side::After => sql.push_after(ORDER, key).push(" ORDER BY t.sort_order, t.id LIMIT 1"),
    };
    let Some(row) = sql.query().fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    Ok(Some(links::attach_one(&mut *conn, Story::from_row(&row)?).await?))
}

impl StoriesApi {
    async fn create(&self, caller: &Caller, request: CreateStoryRequest) -> Result<Story> {
        let owner = *caller.require_user()?;
        let sent = request.story.as_ref().ok_or_else(|| invalid("story", "is required"))?;
        let world_id = domain::id(&request.world_id).map_err(|e| invalid("world_id", e))?;
        let mut violations = FieldViolations::new();
        let request_id = violations
            .check(
                "request_id",
                domain::request_id(&request.request_id, &rules::story::create_story_request::REQUEST_ID),
            )
            .flatten();
        let fields = StoryFields::check(sent, &mut violations);
        let links = Links::parse(Owner::Story, Some(&sent.entity_ids), Some(&sent.location_ids), &mut violations);
        violations.finish()?;
        let target = CreateTarget { world_id, request_id };
        let (mut tx, id) = match children::begin_create::<Story>(&self.0.db, caller, &target).await? {
            Begun::New { tx, id } => (tx, id),
            Begun::Replay(first) => return self.get(caller, first).await,
        };
        links.check(&mut tx, world_id).await?;
        if fields.visibility == Visibility::Public {
            quotas::check_public(&mut tx, &self.0.settings.quotas, &owner, Public::Stories, id).await?;
        }
        // The world's row stays locked from here to the commit: creates in one world
        // wait for each other only over these last statements.
        let order = place(&mut tx, world_id, fields.order, None).await?;
        let mut story = insert(&mut tx, id, world_id, owner.user_id, &fields, order).await?;
        links.save_new(&mut tx, id, &mut story).await?;
        revisions::record(&mut tx, caller, Write::of(RevisionKind::Create, ResourceKind::Story, id, None)).await?;
        tx.commit().await?;
        Ok(story)
    }

    async fn get(&self, caller: &Caller, id: Uuid) -> Result<Story> {
        let mut conn = self.0.db.reader.acquire().await?;
        let (_, story) = readable(&mut conn, caller, id).await?;
        Ok(story)
    }

    async fn list(&self, caller: &Caller, request: ListStoriesRequest) -> Result<ListStoriesResponse> {
        let world_id = domain::id(&request.world_id).map_err(|e| invalid("world_id", e))?;
        let view = view(request.view, StoryView::Basic)?;
        let page = Page::parse(
            request.page_size,
            &request.page_token,
            &LISTING,
            &["ListStories", &request.world_id, &request.filter],
        )?;
        let mut condition = Sql::new(" WHERE t.world_id = ");
        condition.bind(Bind::Text(world_id.to_string()));
        filter::apply(&request.filter, &LISTING, &mut condition)?;

        let mut conn = self.0.db.reader.acquire().await?;
        let access = world_access(&mut *conn, caller, world_id).await?;
        access.require_read()?;
        access.push_readable_stories(caller, &mut condition);
        let count = Sql::select("SELECT COUNT(*) FROM stories t", &condition);
        let total: i64 = count.query().fetch_one(&mut *conn).await?.try_get(0)?;
        let mut select = Sql::select(&format!("SELECT {} FROM stories t", columns(view)), &condition);
        if let Some(after) = page.after_like(&sort_key(&Story::default()))? {
            select.push_after(ORDER, after);
        }
        select.push(" ORDER BY t.sort_order, t.id LIMIT ").bind(Bind::Int(page.fetch_limit()));
        let rows = select.query().fetch_all(&mut *conn).await?;
        let stories = rows.iter().map(Story::from_row).collect::<Result<Vec<_>>>()?;
        let (mut stories, next_page_token) = page.finish_within(stories, sort_key, weight, PAGE_BUDGET);
        links::attach(&mut *conn, &Scope::of(&stories), &mut stories).await?;
        Ok(ListStoriesResponse { stories, next_page_token, total_size: i32::try_from(total).unwrap_or(i32::MAX) })
    }

    /// The caller's stories in the worlds they may read, newest change first.
    async fn list_mine(&self, caller: &Caller, request: ListMyStoriesRequest) -> Result<ListMyStoriesResponse> {
        let me = caller.require_user()?.user_id.to_string();
        let view = view(request.view, StoryView::Basic)?;
        let world_id = domain::optional_id(&request.world_id).map_err(|e| invalid("world_id", e))?;
        let after = instant("updated_after", request.updated_after)?;
        let before = instant("updated_before", request.updated_before)?;
        let window = format!("{after:?} {before:?}");
        let query = ["ListMyStories", &me, &request.filter, &request.world_id, &window];
        let page = Page::parse(request.page_size, &request.page_token, &MINE, &query)?;
        let mut condition = Sql::new(" JOIN worlds w ON w.id = t.world_id WHERE t.owner_id = ");
        condition.bind(Bind::Text(me)).push(" AND ");
        access::push_readable_worlds(caller, &mut condition);
        filter::apply(&request.filter, &MINE, &mut condition)?;
        if let Some(world_id) = world_id {
            condition.push(" AND t.world_id = ").bind(Bind::Text(world_id.to_string()));
        }
        if let Some(after) = after {
            condition.push(" AND t.update_time >= ").bind(Bind::Int(after));
        }
        if let Some(before) = before {
            condition.push(" AND t.update_time < ").bind(Bind::Int(before));
        }
        if let Some(last) = page.after_like(&newest_key(&Story::default()))? {
            condition.push_before(NEWEST, last);
        }
        let mut select = Sql::select(&format!("SELECT {} FROM stories t", columns(view)), &condition);
        select.push(" ORDER BY t.update_time DESC, t.id DESC LIMIT ").bind(Bind::Int(page.fetch_limit()));
        let mut conn = self.0.db.reader.acquire().await?;
        let rows = select.query().fetch_all(&mut *conn).await?;
        let stories = rows.iter().map(Story::from_row).collect::<Result<Vec<_>>>()?;
        let (mut stories, next_page_token) = page.finish_within(stories, newest_key, weight, PAGE_BUDGET);
        links::attach(&mut *conn, &Scope::of(&stories), &mut stories).await?;
        Ok(ListMyStoriesResponse { stories, next_page_token })
    }

    async fn neighbors(&self, caller: &Caller, id: Uuid) -> Result<GetStoryNeighborsResponse> {
        let mut conn = self.0.db.reader.acquire().await?;
        let (located, story) = readable(&mut conn, caller, id).await?;
        let key = sort_key(&story);
        let previous = neighbor(&mut conn, caller, &located.access, &key, Side::Before).await?;
        let next = neighbor(&mut conn, caller, &located.access, &key, Side::After).await?;
        Ok(GetStoryNeighborsResponse { previous, next })
    }
}

impl StoriesApi {
    /// Opens the transaction of a change to story `id`: NOT_FOUND unless the caller
    /// may read it, PERMISSION_DENIED unless they may write the world's children,
    /// ABORTED unless `sent_etag` is empty or current.
    async fn begin_change(
        &self,
        caller: &Caller,
        id: Uuid,
        sent_etag: &str,
    ) -> Result<(Transaction<'static, Any>, Located, Story)> {
        caller.require_user()?;
        let mut tx = self.0.db.begin().await?;
        let (located, story) = readable(&mut tx, caller, id).await?;
        located.require_write()?;
        check_etag(sent_etag, located.version, "story")?;
        Ok((tx, located, story))
    }

    async fn update(&self, caller: &Caller, request: UpdateStoryRequest) -> Result<Story> {
        let sent = request.story.ok_or_else(|| invalid("story", "is required"))?;
        let (id, mask) = update::target(&sent.id, "story.id", request.update_mask.as_ref(), UPDATABLE, |path| {
            populated(&sent, path)
        })?;
        let (mut tx, located, current) = self.begin_change(caller, id, &sent.etag).await?;
        if mask.is_empty() {
            return commit(tx, id).await;
        }
        let before = Resource::Story(current.clone());
        let mut violations = FieldViolations::new();
        let entity_ids = mask.has("entity_ids").then_some(sent.entity_ids.as_slice());
        let location_ids = mask.has("location_ids").then_some(sent.location_ids.as_slice());
        let links = Links::parse(Owner::Story, entity_ids, location_ids, &mut violations);
        let was_public = current.visibility == i32::from(Visibility::Public);
        let owner_id = Uuid::try_parse(&current.owner_id).map_err(|_| Error::Internal(format!("bad owner of {id}")))?;
        let mut fields = StoryFields::check(&merge(sent, current, &mask), &mut violations);
        violations.finish()?;
        links.check(&mut tx, located.access.world_id).await?;
        if fields.visibility == Visibility::Public && !was_public {
            let owner = quotas::owner(&mut tx, owner_id).await?;
            quotas::check_public(&mut tx, &self.0.settings.quotas, &owner, Public::Stories, id).await?;
        }
        if mask.has("order") {
            fields.order = place(&mut tx, located.access.world_id, fields.order, Some(id)).await?;
        }
        overwrite(&mut tx, id, located.version, &fields).await?;
        links.save(&mut tx, id).await?;
        revisions::record(&mut tx, caller, Write::of(RevisionKind::Update, ResourceKind::Story, id, Some(before)))
            .await?;
        commit(tx, id).await
    }

    async fn move_before(&self, caller: &Caller, request: MoveStoryRequest) -> Result<Story> {
        let id = domain::id(&request.id).map_err(|e| invalid("id", e))?;
        let before = domain::optional_id(&request.before_id).map_err(|e| invalid("before_id", e))?;
        let (mut tx, located, story) = self.begin_change(caller, id, &request.etag).await?;
        if before == Some(id) {
            // In front of itself is where it is: nothing moves.
            return commit(tx, id).await;
        }
        let world_id = located.access.world_id;
        let order = match before {
            Some(before) => make_room(&mut tx, world_id, before, id).await?,
            None => place(&mut tx, world_id, 0, Some(id)).await?,
        };
        let moved = sqlx::query(
            "UPDATE stories SET sort_order = $1, version = version + 1, update_time = $2 WHERE id = $3 AND version = $4",
        )
        .bind(order)
        .bind(now_micros())
        .bind(id.to_string())
        .bind(located.version)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Err(etag_mismatch("story"));
        }
        let write = Write::of(RevisionKind::Update, ResourceKind::Story, id, Some(Resource::Story(story)));
        revisions::record(&mut tx, caller, write).await?;
        commit(tx, id).await
    }

    async fn delete(&self, caller: &Caller, request: DeleteStoryRequest) -> Result<()> {
        let id = domain::id(&request.id).map_err(|e| invalid("id", e))?;
        let (mut tx, located, story) = self.begin_change(caller, id, &request.etag).await?;
        // Links go with it (ON DELETE CASCADE); its events keep their place, storyless.
        let deleted = sqlx::query("DELETE FROM stories WHERE id = $1 AND version = $2")
            .bind(id.to_string())
            .bind(located.version)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(etag_mismatch("story"));
        }
        let write = Write::of(RevisionKind::Delete, ResourceKind::Story, id, Some(Resource::Story(story)));
        revisions::record(&mut tx, caller, write).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[tonic::async_trait]
impl StoryService for StoriesApi {
    async fn create_story(&self, request: Request<CreateStoryRequest>) -> Result<Response<Story>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.create(&caller, request.into_inner()).await?))
    }

    async fn get_story(&self, request: Request<GetStoryRequest>) -> Result<Response<Story>, Status> {
        let caller = caller(&request);
        let id = domain::id(&request.get_ref().id).map_err(|e| invalid("id", e))?;
        Ok(Response::new(self.get(&caller, id).await?))
    }

    async fn list_stories(
        &self,
        request: Request<ListStoriesRequest>,
    ) -> Result<Response<ListStoriesResponse>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.list(&caller, request.into_inner()).await?))
    }

    async fn list_my_stories(
        &self,
        request: Request<ListMyStoriesRequest>,
    ) -> Result<Response<ListMyStoriesResponse>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.list_mine(&caller, request.into_inner()).await?))
    }

    async fn update_story(&self, request: Request<UpdateStoryRequest>) -> Result<Response<Story>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.update(&caller, request.into_inner()).await?))
    }

    async fn delete_story(&self, request: Request<DeleteStoryRequest>) -> Result<Response<()>, Status> {
        let caller = caller(&request);
        self.delete(&caller, request.into_inner()).await?;
        Ok(Response::new(()))
    }

    async fn move_story(&self, request: Request<MoveStoryRequest>) -> Result<Response<Story>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.move_before(&caller, request.into_inner()).await?))
    }

    async fn get_story_neighbors(
        &self,
        request: Request<GetStoryNeighborsRequest>,
    ) -> Result<Response<GetStoryNeighborsResponse>, Status> {
        let caller = caller(&request);
        let id = domain::id(&request.get_ref().id).map_err(|e| invalid("id", e))?;
        Ok(Response::new(self.neighbors(&caller, id).await?))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::children::testing::{self, by};

    #[test]
    fn fields_are_checked_together_and_defaulted() {
        let story = Story { title: "  The Road  ".into(), ..Story::default() };
        let mut violations = FieldViolations::new();
        let fields = StoryFields::check(&story, &mut violations);
        assert!(violations.is_empty());
        assert_eq!(
            (fields.title.as_str(), fields.format, fields.visibility),
            ("The Road", StoryFormat::Plain, Visibility::Draft)
        );

        let cases: [(Story, &str, &str); 6] = [
            (Story { title: String::new(), ..Story::default() }, "story.title", "a title is required"),
            (
                Story { content: "x".repeat(declared::CONTENT.max_bytes + 1), ..valid() },
                "story.content",
                "content over 1 MiB",
            ),
            (Story { format: 9, ..valid() }, "story.format", "an unknown format"),
            (Story { genre: "g".repeat(declared::GENRE.max_length + 1), ..valid() }, "story.genre", "a long genre"),
            (Story { visibility: 7, ..valid() }, "story.visibility", "an unknown visibility"),
            (Story { order: -1, ..valid() }, "story.order", "a negative order"),
        ];
        for (story, field, why) in cases {
            let mut violations = FieldViolations::new();
            StoryFields::check(&story, &mut violations);
            let message = violations.finish().err().map(|s| s.message().to_owned()).unwrap_or_default();
            assert!(message.starts_with(field), "{why}: {message:?}");
        }
    }

    fn valid() -> Story {
        Story { title: "T".into(), ..Story::default() }
    }

    #[test]
    fn content_is_bounded_in_bytes_not_characters() {
        let limit = declared::CONTENT.max_bytes;
        assert!(rules::text(&"x".repeat(limit), &declared::CONTENT).is_ok());
        assert!(rules::text(&"é".repeat(limit / 2 + 1), &declared::CONTENT).is_err(), "two bytes each");
    }

    #[test]
    fn an_update_takes_the_masked_fields_only() {
        let current = Story { title: "Old".into(), genre: "saga".into(), order: 4, ..valid() };
        let sent = Story { title: "New".into(), genre: String::new(), order: 0, ..Story::default() };
        let mask = Mask::parse(None, UPDATABLE, |path| populated(&sent, path), &mut FieldViolations::new());
        let merged = merge(sent, current, &mask);
        assert_eq!((merged.title.as_str(), merged.genre.as_str(), merged.order), ("New", "saga", 4));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn concurrent_creates_lose_nothing_and_never_share_an_order() {
        let world = testing::world().await;
        let mut clients = tokio::task::JoinSet::new();
        for client in 0..64 {
            let (api, owner, world_id) = (StoriesApi(world.state.clone()), world.owner, world.world_id.to_string());
            clients.spawn(async move {
                for i in 0..20 {
                    let story = Story { title: format!("{client}-{i}"), ..Story::default() };
                    let request = CreateStoryRequest {
                        world_id: world_id.clone(),
                        story: Some(story),
                        request_id: String::new(),
                    };
                    api.create_story(by(owner, request)).await.expect("the story is created");
                }
            });
        }
        while let Some(done) = clients.join_next().await {
            done.expect("the client finished");
        }
        let api = StoriesApi(world.state.clone());
        let (mut orders, mut token) = (HashSet::new(), String::new());
        loop {
            let request = ListStoriesRequest {
                world_id: world.world_id.to_string(),
                page_size: 200,
                page_token: token,
                ..ListStoriesRequest::default()
            };
            let page = api.list_stories(by(world.reader, request)).await.expect("a page").into_inner();
            assert_eq!(page.total_size, 1280);
            orders.extend(page.stories.iter().map(|s| s.order));
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        assert_eq!(orders.len(), 1280, "every story was listed, each with its own order");
        assert_eq!(orders.iter().max(), Some(&1280));
    }
}
