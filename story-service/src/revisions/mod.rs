//! RevisionService: the history of every world, story, entity, location and event,
//! and the ways back through it.
//!
//! Every write path records its revision with [`record::record`] inside its own
//! transaction, after the write: the resource whole before (read with
//! [`record::current`] before the write) and after, and who wrote it (the user, and
//! the job when gpt-worker writes for one). [`apply`] writes a recorded state back, for
//! RestoreRevision and UndoJob.
//!
//! Who sees a resource's history is who may read the resource now
//! ([`crate::access`]); for a story, those who read every story of its world and its
//! author, since its earlier states may have been private. Restoring takes the right
//! to change the resource.

pub mod apply;
pub mod record;

use std::time::Duration;

use fabula_contracts::pb::story::{
    ListRevisionsRequest, ListRevisionsResponse, ResourceKind, RestoreRevisionRequest, Revision, RevisionKind,
    SkippedChange, UndoJobRequest, UndoJobResponse, revision_service_server::RevisionService, snapshot::Resource,
};
use fabula_runtime::{
    auth::{Caller, caller},
    errors::{self, FieldViolations},
    rules,
};
use fabula_store::{
    db::{Db, now_micros},
    error::{Error, Result, invalid, not_found},
    pagination::{Bind, Key, Listing, Page, Sql},
};
use prost::Message;
use sqlx::AnyConnection;
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

pub use record::{Write, current, record};

use crate::{
    State,
    access::{WorldAccess, world_access},
    domain,
    revisions::record::{COLUMNS, Described, micros, noun, revision_from_row, state_left, version_of},
    update::check_etag,
};

const LISTING: Listing = Listing {
    page_size: &rules::story::list_revisions_request::PAGE_SIZE,
    page_token: &rules::story::list_revisions_request::PAGE_TOKEN,
    // ListRevisions takes no filter; this rule is never read.
    filter: &rules::story::list_revisions_request::PAGE_TOKEN,
    columns: &[],
};
/// The most snapshot text one list page carries, well under the 4 MiB message limit.
const PAGE_BUDGET: usize = 3 * 1024 * 1024;
/// How often the sweep of expired deletions runs.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

pub struct RevisionsApi(pub State);

fn uuid(id: &str) -> Result<Uuid> {
    Uuid::try_parse(id).map_err(|_| Error::Internal(format!("a revision with a bad id {id}")))
}

/// The caller's access to the world of a resource whose newest revision is `latest`,
/// when they may read its history; NOT_FOUND naming `what` when not, or when the
/// world is gone.
async fn history_access(
    conn: &mut AnyConnection,
    caller: &Caller,
    latest: &Revision,
    what: &str,
) -> Result<WorldAccess> {
    let access = match world_access(&mut *conn, caller, uuid(&latest.world_id)?).await {
        Ok(access) if access.can_read() => access,
        Ok(_) => return Err(not_found(what)),
        Err(Error::Rejected(status)) if status.code() == Code::NotFound => return Err(not_found(what)),
        Err(other) => return Err(other),
    };
    if let Some(Resource::Story(story)) = state_left(latest)
        && !access.reads_everything()
        && caller.user_id().map(|me| me.to_string()).as_deref() != Some(story.owner_id.as_str())
    {
        return Err(not_found(what));
    }
    Ok(access)
}

/// PERMISSION_DENIED unless the caller may change a resource of `kind` in the world.
fn require_write(access: &WorldAccess, kind: ResourceKind) -> Result<()> {
    if kind == ResourceKind::World { access.require_owner() } else { access.require_write_children() }
}

/// The key of a revision in a resource's history.
fn sort_key(revision: &Revision) -> Vec<Key> {
    vec![Key::Int(micros(revision)), Key::Text(revision.id.clone())]
}

impl RevisionsApi {
    async fn list(&self, caller: &Caller, request: ListRevisionsRequest) -> Result<ListRevisionsResponse> {
        let resource_id = domain::id(&request.resource_id).map_err(|e| invalid("resource_id", e))?;
        let page =
            Page::parse(request.page_size, &request.page_token, &LISTING, &["ListRevisions", &request.resource_id])?;
        let mut conn = self.0.db.reader.acquire().await?;
        let latest = record::latest(&mut conn, resource_id).await?.ok_or_else(|| not_found("resource"))?;
        history_access(&mut conn, caller, &latest, "resource").await?;
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM revisions r WHERE r.resource_id = "));
        sql.bind(Bind::Text(resource_id.to_string()));
        if let Some(before) = page.after_like(&sort_key(&Revision::default()))? {
            sql.push_before(&["r.create_time", "r.id"], before);
        }
        sql.push(" ORDER BY r.create_time DESC, r.id DESC LIMIT ").bind(Bind::Int(page.fetch_limit()));
        let rows = sql.query().fetch_all(&mut *conn).await?;
        let revisions = rows.iter().map(revision_from_row).collect::<Result<Vec<_>>>()?;
        let (revisions, next_page_token) = page.finish_within(revisions, sort_key, |r| r.encoded_len(), PAGE_BUDGET);
        Ok(ListRevisionsResponse { revisions, next_page_token })
    }

    async fn restore(&self, caller: &Caller, request: RestoreRevisionRequest) -> Result<Revision> {
        caller.require_user()?;
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::id(&request.id));
        violations.check("etag", rules::text(&request.etag, &rules::story::restore_revision_request::ETAG));
        violations.finish()?;
        let id = id.unwrap_or_default();
        let mut tx = self.0.db.begin().await?;
        let revision = record::by_id(&mut tx, id).await?.ok_or_else(|| not_found("revision"))?;
        let (kind, resource_id) = (revision.resource_kind(), uuid(&revision.resource_id)?);
        let latest = record::latest(&mut tx, resource_id).await?.ok_or_else(|| not_found("revision"))?;
        require_write(&history_access(&mut tx, caller, &latest, "revision").await?, kind)?;
        let now = current(&mut tx, kind, resource_id).await?;
        match &now {
            Some(_) if request.etag.is_empty() => {
                return Err(invalid("etag", "is required: send the current etag of the resource to restore"));
            }
            Some(resource) => check_etag(&request.etag, version_of(resource.etag()), noun(kind))?,
            None => self.require_retained(&latest)?,
        }
        let target = state_left(&revision).cloned();
        apply::apply(&mut tx, &self.0.settings.quotas, now.as_ref(), target.as_ref()).await?;
        let write = Write { restored: Some(id), ..Write::of(RevisionKind::Restore, kind, resource_id, now) };
        let restored = record(&mut tx, caller, write).await?;
        tx.commit().await?;
        Ok(restored)
    }

    /// FAILED_PRECONDITION unless the deletion recorded by `deleted` is within the
    /// retention time.
    fn require_retained(&self, deleted: &Revision) -> Result<()> {
        let retention = i64::try_from(self.0.settings.deleted_retention.as_micros()).unwrap_or(i64::MAX);
        if micros(deleted) >= now_micros().saturating_sub(retention) {
            return Ok(());
        }
        let message = "this resource was deleted longer ago than deletions are kept; it cannot be restored";
        Err(errors::status(Code::FailedPrecondition, "RETENTION_EXPIRED", message).into())
    }

    async fn undo(&self, caller: &Caller, request: UndoJobRequest) -> Result<UndoJobResponse> {
        let me = *caller.require_user()?;
        let job_id = domain::id(&request.job_id).map_err(|e| invalid("job_id", e))?;
        let mut tx = self.0.db.begin().await?;
        let sql = format!("SELECT {COLUMNS} FROM revisions r WHERE r.job_id = $1 ORDER BY r.create_time, r.id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(job_id.to_string()).fetch_all(&mut *tx).await?;
        let changes = rows.iter().map(revision_from_row).collect::<Result<Vec<_>>>()?;
        let mine = |r: &Revision| r.author.as_ref().is_some_and(|a| a.user_id == me.user_id.to_string());
        if changes.is_empty() || !(me.is_admin() || changes.iter().all(mine)) {
            return Err(not_found("job"));
        }
        let mut response = UndoJobResponse::default();
        for first in undo_order(&changes) {
            match self.undo_one(&mut tx, caller, job_id, first).await? {
                Undone::Revision(revision) => response.undone.push(*revision),
                Undone::Skipped(skipped) => response.skipped.push(skipped),
                Undone::Nothing => {}
            }
        }
        tx.commit().await?;
        Ok(response)
    }

    /// Puts the resource of `first`, the job's first change to it, back to its state
    /// before the job, unless someone else changed it since or the caller may not.
    async fn undo_one(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        caller: &Caller,
        job_id: Uuid,
        first: &Revision,
    ) -> Result<Undone> {
        let (kind, resource_id) = (first.resource_kind(), uuid(&first.resource_id)?);
        let skip = |reason: &str, revision_id: &str| {
            Ok(Undone::Skipped(SkippedChange {
                resource_kind: kind.into(),
                resource_id: first.resource_id.clone(),
                reason: reason.into(),
                revision_id: revision_id.into(),
            }))
        };
        if let Some(other) = changed_since(tx, first, job_id).await? {
            return skip("CHANGED_SINCE", &other);
        }
        let access = match world_access(&mut **tx, caller, uuid(&first.world_id)?).await {
            Ok(access) => access,
            Err(Error::Rejected(status)) if status.code() == Code::NotFound => {
                return skip("WORLD_DELETED", &first.id);
            }
            Err(other) => return Err(other),
        };
        let target = first.before.as_ref().and_then(|s| s.resource.clone());
        if require_write(&access, kind).is_err() || (kind == ResourceKind::World && target.is_none()) {
            return skip("NOT_WRITABLE", &first.id);
        }
        let now = current(&mut *tx, kind, resource_id).await?;
        if now.is_none() && target.is_none() {
            return Ok(Undone::Nothing);
        }
        apply::apply(tx, &self.0.settings.quotas, now.as_ref(), target.as_ref()).await?;
        let write = Write::of(RevisionKind::Undo, kind, resource_id, now);
        Ok(Undone::Revision(Box::new(record(tx, caller, write).await?)))
    }
}

/// What became of one resource a job changed.
enum Undone {
    Revision(Box<Revision>),
    Skipped(SkippedChange),
    /// It is already as it was before the job (made and deleted by it).
    Nothing,
}

/// The job's first change to each resource it changed, `changes` being all of them
/// oldest first; the resource changed last comes first, so they are undone newest
/// first.
fn undo_order(changes: &[Revision]) -> Vec<&Revision> {
    let mut order: Vec<&str> = Vec::new();
    for change in changes.iter().rev() {
        if !order.contains(&change.resource_id.as_str()) {
            order.push(&change.resource_id);
        }
    }
    order.into_iter().filter_map(|resource| changes.iter().find(|c| c.resource_id == resource)).collect()
}

/// The first revision of `first`'s resource after it that job `job_id` did not make.
async fn changed_since(conn: &mut AnyConnection, first: &Revision, job_id: Uuid) -> Result<Option<String>> {
    let row: Option<String> = sqlx::query_scalar(
        "SELECT r.id FROM revisions r WHERE r.resource_id = $1 AND (r.create_time > $2 OR (r.create_time = $2 \
         AND r.id > $3)) AND (r.job_id IS NULL OR r.job_id <> $4) ORDER BY r.create_time, r.id LIMIT 1",
    )
    .bind(&first.resource_id)
    .bind(micros(first))
    .bind(&first.id)
    .bind(job_id.to_string())
    .fetch_optional(conn)
    .await?;
    Ok(row)
}

/// Deletes the revisions of resources deleted longer than `retention` ago (those
/// whose newest revision left them deleted); returns how many went.
pub async fn purge_expired(db: &Db, retention: Duration) -> Result<u64> {
    let cutoff = now_micros().saturating_sub(i64::try_from(retention.as_micros()).unwrap_or(i64::MAX));
    let purged = sqlx::query(
        "DELETE FROM revisions WHERE resource_id IN (SELECT d.resource_id FROM revisions d \
         WHERE d.after_state IS NULL AND d.create_time < $1 AND NOT EXISTS (SELECT 1 FROM revisions n \
         WHERE n.resource_id = d.resource_id AND (n.create_time > d.create_time \
         OR (n.create_time = d.create_time AND n.id > d.id))))",
    )
    .bind(cutoff)
    .execute(&db.writer)
    .await?;
    Ok(purged.rows_affected())
}

/// Runs [`purge_expired`] every hour until the database closes.
pub fn spawn_sweep(db: Db, retention: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        while !db.writer.is_closed() {
            tick.tick().await;
            match purge_expired(&db, retention).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "revisions of expired deletions purged"),
                Err(error) if !db.writer.is_closed() => {
                    tracing::warn!(error = %error, "the sweep of expired deletions failed");
                }
                Err(_) => {}
            }
        }
    });
}

#[tonic::async_trait]
impl RevisionService for RevisionsApi {
    async fn list_revisions(
        &self,
        request: Request<ListRevisionsRequest>,
    ) -> Result<Response<ListRevisionsResponse>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.list(&caller, request.into_inner()).await?))
    }

    async fn restore_revision(&self, request: Request<RestoreRevisionRequest>) -> Result<Response<Revision>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.restore(&caller, request.into_inner()).await?))
    }

    async fn undo_job(&self, request: Request<UndoJobRequest>) -> Result<Response<UndoJobResponse>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.undo(&caller, request.into_inner()).await?))
    }
}

#[cfg(test)]
mod tests {
    use fabula_contracts::pb::story::{
        CreateEntityRequest, DeleteEntityRequest, Entity, entity_service_server::EntityService,
    };

    use super::*;
    use crate::{
        children::testing::{self, by},
        entities::EntitiesApi,
    };

    fn revision(id: &str, resource_id: &str, kind: RevisionKind, micros: i64) -> Revision {
        Revision {
            id: id.into(),
            resource_id: resource_id.into(),
            kind: kind.into(),
            create_time: Some(fabula_store::db::timestamp(micros)),
            ..Revision::default()
        }
    }

    #[test]
    fn a_job_is_undone_from_its_last_change_back_to_its_first() {
        let changes = [
            revision("1", "a", RevisionKind::Create, 1),
            revision("2", "b", RevisionKind::Update, 2),
            revision("3", "a", RevisionKind::Update, 3),
        ];
        let order: Vec<&str> = undo_order(&changes).iter().map(|r| r.id.as_str()).collect();
        assert_eq!(order, ["1", "2"], "a (changed last) goes back to before its first change, then b");
    }

    #[tokio::test]
    async fn the_sweep_purges_the_history_of_deleted_resources_only() {
        let world = testing::world().await;
        let api = EntitiesApi(world.state.clone());
        let create = |name: &str| CreateEntityRequest {
            world_id: world.world_id.to_string(),
            entity: Some(Entity { name: name.into(), ..Entity::default() }),
            request_id: String::new(),
        };
        let gone = api.create_entity(by(world.owner, create("Gone"))).await.unwrap().into_inner();
        let kept = api.create_entity(by(world.owner, create("Kept"))).await.unwrap().into_inner();
        let delete = DeleteEntityRequest { id: gone.id.clone(), etag: gone.etag.clone() };
        api.delete_entity(by(world.owner, delete)).await.unwrap();

        let db = &world.state.db;
        assert_eq!(purge_expired(db, Duration::from_secs(3600)).await.unwrap(), 0, "a recent deletion stays");
        assert_eq!(purge_expired(db, Duration::ZERO).await.unwrap(), 2, "its create and its delete");
        let left: Vec<String> = sqlx::query_scalar("SELECT resource_id FROM revisions WHERE resource_kind = 'ENTITY'")
            .fetch_all(&db.reader)
            .await
            .unwrap();
        assert_eq!(left, [kept.id], "a live entity keeps its history");
    }
}
