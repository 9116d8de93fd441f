//! What the children of a world (entities and locations; stories and events may
//! follow) have in common: reading a row by id, finding a child's world and the
//! caller's access to it, idempotent creates, keyset-paginated lists, and
//! etag-checked changes and deletes.
//!
//! A resource opts in by implementing [`WorldChild`] for its message; its module
//! keeps what is its own: validation, the INSERT and the UPDATE.
//!
//! Access follows [`crate::access`]: a child is readable when its world is, and
//! changed by those who may write the world's children. A child whose world the
//! caller may not read is NOT_FOUND under the child's own name, so a guessed id
//! tells nothing about what exists.

use fabula_contracts::pb::story::{ResourceKind, RevisionKind};
use fabula_runtime::{auth::Caller, errors::FieldViolations, rules::Rule};
use fabula_store::{
    db::{Db, timestamp},
    error::{Result, etag_mismatch, invalid, not_found},
    filter,
    pagination::{Bind, Key, Listing, Page, Sql},
};
use prost_types::Timestamp;
use sqlx::{Any, AnyConnection, Executor, Row, Transaction, any::AnyRow};
use uuid::Uuid;

use crate::{
    access::{WORLD_ACCESS_COLUMNS, WORLD_ACCESS_JOIN, WorldAccess, access_from_row, caller_key, world_access},
    domain,
    idempotency::{self, Claim},
    revisions,
    update::{check_etag, etag},
};

/// A message stored as a row of a table whose rows belong to one world
/// (`world_id`), are keyed by a UUID v7 `id` and carry a `version`.
pub trait WorldChild: Sized + Send + Unpin + 'static {
    /// The table, aliased `t` in every query built here.
    const TABLE: &'static str;
    /// The resource's name in messages and idempotency records: `entity`.
    const NOUN: &'static str;
    /// What its revisions are about.
    const KIND: ResourceKind;
    /// The columns [`WorldChild::from_row`] reads, each prefixed `t.`.
    const COLUMNS: &'static str;

    fn from_row(row: &AnyRow) -> Result<Self>;

    /// The id, the last key of a list page.
    fn id(&self) -> &str;

    /// More columns [`locate_with`] reads in the same query, after the child's own and
    /// its world's (a story's links); none by default.
    fn extra_columns() -> String {
        String::new()
    }

    /// Reads the [`WorldChild::extra_columns`] starting at index `first` of `row`.
    fn read_extra(&mut self, _row: &AnyRow, _first: usize) -> Result<()> {
        Ok(())
    }
}

/// The etag and times of a row, read from its `version, create_time, update_time`.
pub struct Stamps {
    pub etag: String,
    pub create_time: Option<Timestamp>,
    pub update_time: Option<Timestamp>,
}

impl Stamps {
    /// Reads the three columns starting at index `first`.
    pub fn read(row: &AnyRow, first: usize) -> Result<Self> {
        Ok(Self {
            etag: etag(row.try_get(first)?),
            create_time: Some(timestamp(row.try_get(first + 1)?)),
            update_time: Some(timestamp(row.try_get(first + 2)?)),
        })
    }
}

/// Child `id` as stored, with no access check; NOT_FOUND when there is none.
pub async fn fetch<'e, T: WorldChild>(executor: impl Executor<'e, Database = Any>, id: Uuid) -> Result<T> {
    find(executor, id).await?.ok_or_else(|| not_found(T::NOUN))
}

/// Child `id` as stored, if there is one, with no access check.
pub async fn find<'e, T: WorldChild>(executor: impl Executor<'e, Database = Any>, id: Uuid) -> Result<Option<T>> {
    let sql = format!("SELECT {} FROM {} t WHERE t.id = $1", T::COLUMNS, T::TABLE);
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_string()).fetch_optional(executor).await?;
    row.as_ref().map(T::from_row).transpose()
}

/// A child found by id: its current version and the caller's access to its world.
#[derive(Clone, Copy, Debug)]
pub struct Located {
    pub noun: &'static str,
    pub version: i64,
    pub access: WorldAccess,
}

impl Located {
    /// NOT_FOUND, naming the child, unless its world is readable.
    pub fn require_read(&self) -> Result<()> {
        self.access.require_read().map_err(|_| not_found(self.noun))
    }

    /// As [`Located::require_read`], then PERMISSION_DENIED unless the caller may
    /// write the world's children.
    pub fn require_write(&self) -> Result<()> {
        self.require_read()?;
        self.access.require_write_children()
    }
}

/// Finds child `id` and the caller's access to its world, deciding nothing yet;
/// NOT_FOUND when there is no such child.
pub async fn locate<T: WorldChild>(conn: &mut AnyConnection, caller: &Caller, id: Uuid) -> Result<Located> {
    Ok(locate_with::<T>(conn, caller, id).await?.0)
}

/// [`locate`], reading the child itself in the same query.
pub async fn locate_with<T: WorldChild>(conn: &mut AnyConnection, caller: &Caller, id: Uuid) -> Result<(Located, T)> {
    // The child's own columns come first, where `from_row` reads them.
    let extra = T::extra_columns();
    let sql = format!(
        "SELECT {}, t.world_id, t.version, {WORLD_ACCESS_COLUMNS}{}{extra} FROM {} t JOIN worlds w ON w.id = t.world_id\
         {WORLD_ACCESS_JOIN} WHERE t.id = $1",
        T::COLUMNS,
        if extra.is_empty() { "" } else { ", " },
        T::TABLE
    );
    let first = T::COLUMNS.split(',').count();
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .bind(caller_key(caller))
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| not_found(T::NOUN))?;
    let world_id: String = row.try_get(first)?;
    let world_id = Uuid::try_parse(&world_id)
        .map_err(|_| fabula_store::error::Error::Internal(format!("bad world id {world_id} of {} {id}", T::NOUN)))?;
    let access = access_from_row(&row, first + 2, caller, world_id)?;
    let mut child = T::from_row(&row)?;
    child.read_extra(&row, first + 5)?;
    Ok((Located { noun: T::NOUN, version: row.try_get(first + 1)?, access }, child))
}

/// Child `id`, when the caller may read it.
pub async fn get<T: WorldChild>(db: &Db, caller: &Caller, id: Uuid) -> Result<T> {
    let mut conn = db.reader.acquire().await?;
    let (located, child) = locate_with::<T>(&mut conn, caller, id).await?;
    located.require_read()?;
    Ok(child)
}

/// The parent world and `request_id` of a create, as sent.
pub struct CreateTarget {
    pub world_id: Uuid,
    pub request_id: Option<String>,
}

impl CreateTarget {
    /// Parses both (the request id as `request_id_rule` says), filing problems under
    /// `world_id` and `request_id`.
    pub fn parse(world_id: &str, request_id: &str, request_id_rule: &Rule, violations: &mut FieldViolations) -> Self {
        Self {
            world_id: violations.check("world_id", domain::id(world_id)).unwrap_or_default(),
            request_id: violations.check("request_id", domain::request_id(request_id, request_id_rule)).flatten(),
        }
    }
}

/// How a create goes on after [`begin_create`].
pub enum Begun {
    /// Insert the child `id` in `tx`, then call [`finish`].
    New { tx: Transaction<'static, Any>, id: Uuid },
    /// The `request_id` made the child with this id before: return that one.
    Replay(Uuid),
}

/// Opens the transaction of a create in `target`'s world: NOT_FOUND unless the
/// world is readable, PERMISSION_DENIED unless the caller may write its children,
/// then claims the `request_id`.
pub async fn begin_create<T: WorldChild>(db: &Db, caller: &Caller, target: &CreateTarget) -> Result<Begun> {
    let user = caller.require_user()?.user_id;
    let mut tx = db.begin().await?;
    world_access(&mut *tx, caller, target.world_id).await?.require_write_children()?;
    let id = Uuid::now_v7();
    match idempotency::claim(&mut tx, user, target.request_id.as_deref(), T::NOUN, id).await? {
        Claim::New => Ok(Begun::New { tx, id }),
        Claim::Replay(first) => Ok(Begun::Replay(first)),
    }
}

/// Opens the transaction of a change to child `id`: NOT_FOUND unless readable,
/// PERMISSION_DENIED unless the caller may write the world's children, ABORTED
/// unless `sent_etag` is empty or current. Returns the transaction and the version
/// the change must be conditional on (`… WHERE id = $n AND version = $m`).
pub async fn begin_change<T: WorldChild>(
    db: &Db,
    caller: &Caller,
    id: Uuid,
    sent_etag: &str,
) -> Result<(Transaction<'static, Any>, i64)> {
    caller.require_user()?;
    let mut tx = db.begin().await?;
    let located = locate::<T>(&mut tx, caller, id).await?;
    located.require_write()?;
    check_etag(sent_etag, located.version, T::NOUN)?;
    Ok((tx, located.version))
}

/// Ends a create or a conditional change of a child, `write`, that touched `rows`
/// rows: ABORTED when none (someone changed it meanwhile), else records the revision
/// and returns the row as it is now, committed.
pub async fn finish<T: WorldChild>(
    mut tx: Transaction<'static, Any>,
    caller: &Caller,
    write: revisions::Write,
    rows: u64,
) -> Result<T> {
    if rows == 0 {
        return Err(etag_mismatch(T::NOUN));
    }
    let id = write.resource_id;
    revisions::record(&mut tx, caller, write).await?;
    let child = fetch(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(child)
}

/// Deletes child `id` (sent as `id`) when the caller may write it and `sent_etag`
/// is empty or current, recording its last state. Rows that refer to it go by the
/// schema's ON DELETE CASCADE.
pub async fn delete<T: WorldChild>(db: &Db, caller: &Caller, id: &str, sent_etag: &str) -> Result<()> {
    let id = domain::id(id).map_err(|e| invalid("id", e))?;
    let (mut tx, version) = begin_change::<T>(db, caller, id, sent_etag).await?;
    let before = revisions::current(&mut tx, T::KIND, id).await?;
    let sql = format!("DELETE FROM {} WHERE id = $1 AND version = $2", T::TABLE);
    let deleted = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_string()).bind(version).execute(&mut *tx).await?;
    if deleted.rows_affected() == 0 {
        return Err(etag_mismatch(T::NOUN));
    }
    revisions::record(&mut tx, caller, revisions::Write::of(RevisionKind::Delete, T::KIND, id, before)).await?;
    tx.commit().await?;
    Ok(())
}

/// A list request of a world's children, as sent.
pub struct ListRequest<'a> {
    /// The method, so a page token only works for the query that made it.
    pub method: &'a str,
    pub world_id: &'a str,
    pub page_size: i32,
    pub page_token: &'a str,
    pub filter: &'a str,
}

/// One page of a world's children.
pub struct Listed<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
    pub total_size: i32,
}

/// A page of the children of a world the caller may read, in id (creation) order,
/// filtered as `listing` declares; `total_size` counts every page.
pub async fn list<T: WorldChild>(
    db: &Db,
    caller: &Caller,
    request: ListRequest<'_>,
    listing: &Listing,
) -> Result<Listed<T>> {
    let world_id = domain::id(request.world_id).map_err(|e| invalid("world_id", e))?;
    let query = [request.method, request.world_id, request.filter];
    let page = Page::parse(request.page_size, request.page_token, listing, &query)?;
    let mut condition = Sql::new(" WHERE t.world_id = ");
    condition.bind(Bind::Text(world_id.to_string()));
    filter::apply(request.filter, listing, &mut condition)?;

    let mut conn = db.reader.acquire().await?;
    world_access(&mut *conn, caller, world_id).await?.require_read()?;
    let count = Sql::select(&format!("SELECT COUNT(*) FROM {} t", T::TABLE), &condition);
    let total: i64 = count.query().fetch_one(&mut *conn).await?.try_get(0)?;
    let mut select = Sql::select(&format!("SELECT {} FROM {} t", T::COLUMNS, T::TABLE), &condition);
    if let Some(after) = page.after_like(&[Key::Text(String::new())])? {
        select.push_after(&["t.id"], after);
    }
    select.push(" ORDER BY t.id LIMIT ").bind(Bind::Int(page.fetch_limit()));
    let rows = select.query().fetch_all(&mut *conn).await?;
    let items = rows.iter().map(T::from_row).collect::<Result<Vec<_>>>()?;
    let (items, next_page_token) = page.finish(items, |child| vec![Key::Text(child.id().to_owned())]);
    Ok(Listed { items, next_page_token, total_size: i32::try_from(total).unwrap_or(i32::MAX) })
}

#[cfg(test)]
pub(crate) mod testing {
    //! A real service state on a fresh SQLite file, with users and a world to
    //! hang children on.

    use fabula_contracts::pb::accounts::Role;
    use fabula_runtime::auth::{Caller, Principal};
    use fabula_store::{db::now_micros, error::Error};
    use tonic::{Code, Request, Status};
    use tonic_types::StatusExt;
    use uuid::Uuid;

    use crate::{Settings, State};

    /// `message` as sent by `caller`.
    pub fn by<T>(caller: Caller, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.extensions_mut().insert(caller);
        request
    }

    /// The code of a failed call.
    pub fn code<T: std::fmt::Debug>(result: Result<T, Status>) -> Code {
        result.expect_err("the call was refused").code()
    }

    /// The fields a `BadRequest` names, or why there is none.
    pub fn violated<T: std::fmt::Debug>(result: fabula_store::error::Result<T>) -> Vec<String> {
        match result {
            Err(Error::Rejected(status)) => status
                .get_details_bad_request()
                .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
                .unwrap_or_else(|| vec![format!("no BadRequest in {status:?}")]),
            other => vec![format!("not a rejection: {other:?}")],
        }
    }

    pub struct World {
        pub state: State,
        pub world_id: Uuid,
        pub owner: Caller,
        pub reader: Caller,
        pub stranger: Caller,
        _dir: tempfile::TempDir,
    }

    /// A PRIVATE world owned by `owner`, shared with `reader` as a READER.
    pub async fn world() -> World {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("story.db").display());
        let app = crate::build(Settings::for_tests(url, dir.path())).await.expect("the service builds");
        let state = app.state.clone();
        let [owner, reader, stranger] =
            [user(&state, "owner").await, user(&state, "reader").await, user(&state, "x").await];
        let world_id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO worlds (id, owner_id, name, description, world_type, visibility, create_time, update_time) \
             VALUES ($1, $2, 'W', '', 'OTHER', 'PRIVATE', 0, 0)",
        )
        .bind(world_id.to_string())
        .bind(owner.user_id().expect("a user").to_string())
        .execute(&state.db.writer)
        .await
        .expect("the world is stored");
        sqlx::query("INSERT INTO world_shares (world_id, user_id, role, create_time) VALUES ($1, $2, 'READER', 0)")
            .bind(world_id.to_string())
            .bind(reader.user_id().expect("a user").to_string())
            .execute(&state.db.writer)
            .await
            .expect("the share is stored");
        World { state, world_id, owner, reader, stranger, _dir: dir }
    }

    async fn user(state: &State, name: &str) -> Caller {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO users (id, username, username_key, email, email_key, display_name, password_hash, role, \
             create_time, update_time) VALUES ($1, $2, $2, $3, $3, $2, '', 'USER', $4, $4)",
        )
        .bind(id.to_string())
        .bind(format!("{name}-{id}"))
        .bind(format!("{id}@example.test"))
        .bind(now_micros())
        .execute(&state.db.writer)
        .await
        .expect("the user is stored");
        Caller::User(Principal { user_id: id, role: Role::User, job_id: None })
    }
}
