//! The `revisions` table: recording a write, reading a resource whole (its
//! [`Resource`] snapshot), and reading revisions back. Snapshots are stored as the
//! proto3 JSON of a `fabula.story.v1.Snapshot`, so they read like the API's answers
//! and keep every field a later version of the message adds.

use std::sync::LazyLock;

use fabula_contracts::{
    FILE_DESCRIPTOR_SET,
    pb::story::{
        Author, Entity, Event, Location, ResourceKind, Revision, RevisionKind, Snapshot, Story, author,
        snapshot::Resource,
    },
};
use fabula_runtime::auth::Caller;
use fabula_store::{
    db::{now_micros, timestamp},
    error::{Error, Result},
};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage};
use prost_types::Timestamp;
use sqlx::{AnyConnection, Row, any::AnyRow};
use uuid::Uuid;

use crate::{children, events, links, worlds};

/// The fields of a snapshot that every write changes and no one sets.
const STAMPS: &[&str] = &["etag", "create_time", "update_time"];

/// The columns [`revision_from_row`] reads, in its order.
pub const COLUMNS: &str = "r.id, r.resource_kind, r.resource_id, r.world_id, r.kind, r.author_id, r.job_id, \
                           r.restored_id, r.create_time, r.before_state, r.after_state, r.changed, r.proposal_id";

static POOL: LazyLock<DescriptorPool> =
    LazyLock::new(|| DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("the contracts' descriptor set decodes"));

fn descriptor(name: &str) -> MessageDescriptor {
    POOL.get_message_by_name(name).unwrap_or_else(|| panic!("{name} is in the contracts"))
}

/// What the kinds of resource have in common.
pub trait Described {
    fn kind(&self) -> ResourceKind;
    fn id(&self) -> &str;
    fn world_id(&self) -> &str;
    fn etag(&self) -> &str;
    /// The resource as a message of the descriptor pool, to compare fields.
    fn dynamic(&self) -> DynamicMessage;
}

impl Described for Resource {
    fn kind(&self) -> ResourceKind {
        match self {
            Self::World(_) => ResourceKind::World,
            Self::Story(_) => ResourceKind::Story,
            Self::Entity(_) => ResourceKind::Entity,
            Self::Location(_) => ResourceKind::Location,
            Self::Event(_) => ResourceKind::Event,
        }
    }

    fn id(&self) -> &str {
        match self {
            Self::World(m) => &m.id,
            Self::Story(m) => &m.id,
            Self::Entity(m) => &m.id,
            Self::Location(m) => &m.id,
            Self::Event(m) => &m.id,
        }
    }

    fn world_id(&self) -> &str {
        match self {
            Self::World(w) => &w.id,
            Self::Story(s) => &s.world_id,
            Self::Entity(e) => &e.world_id,
            Self::Location(l) => &l.world_id,
            Self::Event(e) => &e.world_id,
        }
    }

    fn etag(&self) -> &str {
        match self {
            Self::World(w) => &w.etag,
            Self::Story(s) => &s.etag,
            Self::Entity(e) => &e.etag,
            Self::Location(l) => &l.etag,
            Self::Event(e) => &e.etag,
        }
    }

    fn dynamic(&self) -> DynamicMessage {
        let (name, bytes) = match self {
            Self::World(m) => ("fabula.story.v1.World", m.encode_to_vec()),
            Self::Story(m) => ("fabula.story.v1.Story", m.encode_to_vec()),
            Self::Entity(m) => ("fabula.story.v1.Entity", m.encode_to_vec()),
            Self::Location(m) => ("fabula.story.v1.Location", m.encode_to_vec()),
            Self::Event(m) => ("fabula.story.v1.Event", m.encode_to_vec()),
        };
        DynamicMessage::decode(descriptor(name), bytes.as_slice()).expect("a message decodes as itself")
    }
}

/// A kind of resource in messages: `entity`.
pub fn noun(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::World => "world",
        ResourceKind::Story => "story",
        ResourceKind::Entity => "entity",
        ResourceKind::Location => "location",
        ResourceKind::Event => "event",
        ResourceKind::Unspecified => "resource",
    }
}

/// The version an etag stands for (`"3"` → 3); 0 for none.
pub fn version_of(etag: &str) -> i64 {
    etag.trim_matches('"').parse().unwrap_or_default()
}

/// Resource `id` of `kind` as it is now, whole (a story or an event with its links and
/// connections), or `None` when there is no such row.
pub async fn current(conn: &mut AnyConnection, kind: ResourceKind, id: Uuid) -> Result<Option<Resource>> {
    Ok(match kind {
        ResourceKind::World => worlds::find_world(&mut *conn, id).await?.map(Resource::World),
        ResourceKind::Story => match children::find::<Story>(&mut *conn, id).await? {
            Some(story) => Some(Resource::Story(links::attach_one(&mut *conn, story).await?)),
            None => None,
        },
        ResourceKind::Entity => children::find::<Entity>(&mut *conn, id).await?.map(Resource::Entity),
        ResourceKind::Location => children::find::<Location>(&mut *conn, id).await?.map(Resource::Location),
        ResourceKind::Event => match children::find::<Event>(&mut *conn, id).await? {
            Some(event) => Some(Resource::Event(events::complete_one(&mut *conn, event).await?)),
            None => None,
        },
        ResourceKind::Unspecified => None,
    })
}

/// A write about to be recorded.
pub struct Write {
    pub kind: RevisionKind,
    pub resource_kind: ResourceKind,
    pub resource_id: Uuid,
    pub before: Option<Resource>,
    /// A RESTORE: the revision restored.
    pub restored: Option<Uuid>,
    /// A write of an accepted proposal: the proposal's job and the proposal.
    pub proposal: Option<(Uuid, Uuid)>,
}

impl Write {
    /// A create, update or delete of resource `id` of `kind` that was `before`.
    pub fn of(kind: RevisionKind, resource_kind: ResourceKind, id: Uuid, before: Option<Resource>) -> Self {
        Self { kind, resource_kind, resource_id: id, before, restored: None, proposal: None }
    }
}

/// Records `write` by `caller` (and the job it runs, for a trusted service's call),
/// reading the resource as it now is inside the write's own transaction: every
/// write path ends here before its commit. Returns the revision.
pub async fn record(conn: &mut AnyConnection, caller: &Caller, write: Write) -> Result<Revision> {
    let author = caller.require_user()?;
    let job_id = write.proposal.map(|(job, _)| job).or(author.job_id);
    let after = current(&mut *conn, write.resource_kind, write.resource_id).await?;
    let world_id = after
        .as_ref()
        .or(write.before.as_ref())
        .map(|r| r.world_id().to_owned())
        .ok_or_else(|| Error::Internal(format!("a revision of {} with no state", write.resource_id)))?;
    let revision = Revision {
        id: Uuid::now_v7().to_string(),
        resource_kind: write.resource_kind.into(),
        resource_id: write.resource_id.to_string(),
        world_id,
        kind: write.kind.into(),
        author: Some(Author {
            user_id: author.user_id.to_string(),
            via: job_id.map(|job| author::Via::JobId(job.to_string())),
            proposal_id: write.proposal.map(|(_, proposal)| proposal.to_string()).unwrap_or_default(),
        }),
        create_time: Some(timestamp(now_micros())),
        changed_fields: changed_fields(write.before.as_ref(), after.as_ref()),
        before: write.before.map(|r| Snapshot { resource: Some(r) }),
        after: after.map(|r| Snapshot { resource: Some(r) }),
        restored_revision_id: write.restored.map(|id| id.to_string()).unwrap_or_default(),
    };
    insert(conn, &revision, job_id).await?;
    Ok(revision)
}

async fn insert(conn: &mut AnyConnection, revision: &Revision, job_id: Option<Uuid>) -> Result<()> {
    let author = revision.author.as_ref().map(|a| a.user_id.clone()).unwrap_or_default();
    sqlx::query(
        "INSERT INTO revisions (id, resource_kind, resource_id, world_id, kind, author_id, job_id, restored_id, \
         create_time, before_state, after_state, changed, proposal_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&revision.id)
    .bind(revision.resource_kind().as_str_name())
    .bind(&revision.resource_id)
    .bind(&revision.world_id)
    .bind(revision.kind().as_str_name())
    .bind(author)
    .bind(job_id.map(|id| id.to_string()))
    .bind(Some(revision.restored_revision_id.clone()).filter(|id| !id.is_empty()))
    .bind(micros(revision))
    .bind(revision.before.as_ref().map(to_json).transpose()?)
    .bind(revision.after.as_ref().map(to_json).transpose()?)
    .bind(serde_json::to_string(&revision.changed_fields).map_err(|e| Error::Internal(e.to_string()))?)
    .bind(revision.author.as_ref().map(|a| a.proposal_id.clone()).filter(|id| !id.is_empty()))
    .execute(conn)
    .await?;
    Ok(())
}

/// The proto names of the fields that differ between `before` and `after`, the
/// stamps aside; a missing side counts as a message with every field unset.
pub fn changed_fields(before: Option<&Resource>, after: Option<&Resource>) -> Vec<String> {
    let Some(sample) = after.or(before) else {
        return Vec::new();
    };
    let empty = DynamicMessage::new(sample.dynamic().descriptor());
    let before = before.map(Described::dynamic).unwrap_or_else(|| empty.clone());
    let after = after.map(Described::dynamic).unwrap_or(empty);
    after
        .descriptor()
        .fields()
        .filter(|field| !STAMPS.contains(&field.name()))
        .filter(|field| before.get_field(field) != after.get_field(field))
        .map(|field| field.name().to_owned())
        .collect()
}

fn to_json(snapshot: &Snapshot) -> Result<String> {
    message_to_json("fabula.story.v1.Snapshot", snapshot)
}

fn from_json(text: &str) -> Result<Snapshot> {
    message_from_json("fabula.story.v1.Snapshot", text)
}

/// `message`, of the contracts' message `name`, as its proto3 JSON, to store.
pub fn message_to_json(name: &str, message: &impl Message) -> Result<String> {
    let dynamic = DynamicMessage::decode(descriptor(name), message.encode_to_vec().as_slice())
        .map_err(|e| Error::Internal(format!("a {name} to JSON: {e}")))?;
    serde_json::to_string(&dynamic).map_err(|e| Error::Internal(format!("a {name} to JSON: {e}")))
}

/// A stored [`message_to_json`] read back.
pub fn message_from_json<M: Message + Default>(name: &str, text: &str) -> Result<M> {
    let mut json = serde_json::Deserializer::from_str(text);
    let dynamic = DynamicMessage::deserialize(descriptor(name), &mut json)
        .map_err(|e| Error::Internal(format!("a stored {name}: {e}")))?;
    dynamic.transcode_to().map_err(|e| Error::Internal(format!("a stored {name}: {e}")))
}

/// A revision read with [`COLUMNS`].
pub fn revision_from_row(row: &AnyRow) -> Result<Revision> {
    let text = |i: usize| row.try_get::<Option<String>, _>(i);
    let snapshot = |i: usize| text(i).map_err(Error::from).and_then(|t| t.as_deref().map(from_json).transpose());
    let changed: String = row.try_get(11)?;
    Ok(Revision {
        id: row.try_get(0)?,
        resource_kind: ResourceKind::from_str_name(&row.try_get::<String, _>(1)?).unwrap_or_default().into(),
        resource_id: row.try_get(2)?,
        world_id: row.try_get(3)?,
        kind: RevisionKind::from_str_name(&row.try_get::<String, _>(4)?).unwrap_or_default().into(),
        author: Some(Author {
            user_id: row.try_get(5)?,
            via: text(6)?.map(author::Via::JobId),
            proposal_id: text(12)?.unwrap_or_default(),
        }),
        restored_revision_id: text(7)?.unwrap_or_default(),
        create_time: Some(timestamp(row.try_get(8)?)),
        before: snapshot(9)?,
        after: snapshot(10)?,
        changed_fields: serde_json::from_str(&changed).map_err(|e| Error::Internal(format!("changed fields: {e}")))?,
    })
}

/// A time as stored: microseconds since the Unix epoch (the inverse of [`timestamp`]).
pub fn to_micros(time: Timestamp) -> i64 {
    time.seconds * 1_000_000 + i64::from(time.nanos / 1000)
}

/// The microseconds of a revision's create time.
pub fn micros(revision: &Revision) -> i64 {
    revision.create_time.map_or(0, to_micros)
}

/// The state a revision left its resource in: its `after`, or for one that deleted the
/// resource, its `before`.
pub fn state_left(revision: &Revision) -> Option<&Resource> {
    revision.after.as_ref().or(revision.before.as_ref()).and_then(|s| s.resource.as_ref())
}

/// The newest revision of resource `id`, if any.
pub async fn latest(conn: &mut AnyConnection, id: Uuid) -> Result<Option<Revision>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM revisions r WHERE r.resource_id = $1 ORDER BY r.create_time DESC, r.id DESC LIMIT 1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_string()).fetch_optional(conn).await?;
    row.as_ref().map(revision_from_row).transpose()
}

/// Revision `id`, if any.
pub async fn by_id(conn: &mut AnyConnection, id: Uuid) -> Result<Option<Revision>> {
    let sql = format!("SELECT {COLUMNS} FROM revisions r WHERE r.id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_string()).fetch_optional(conn).await?;
    row.as_ref().map(revision_from_row).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_round_trip_through_json() {
        let entity = Entity {
            id: Uuid::now_v7().to_string(),
            name: "Arwen".into(),
            attributes: [("age".to_owned(), "2901".to_owned())].into(),
            etag: "\"2\"".into(),
            ..Entity::default()
        };
        let snapshot = Snapshot { resource: Some(Resource::Entity(entity)) };
        let json = to_json(&snapshot).unwrap();
        assert!(json.contains("\"entity\""), "{json}");
        assert_eq!(from_json(&json).unwrap(), snapshot);
    }

    #[test]
    fn changed_fields_leave_the_stamps_out() {
        let before = Entity { name: "A".into(), etag: "\"1\"".into(), ..Entity::default() };
        let after = Entity { name: "B".into(), description: "d".into(), etag: "\"2\"".into(), ..before.clone() };
        let (before, after) = (Resource::Entity(before), Resource::Entity(after));
        assert_eq!(changed_fields(Some(&before), Some(&after)), ["name", "description"]);
        assert_eq!(changed_fields(None, Some(&before)), ["name"], "a create changes what it sets");
        assert_eq!(changed_fields(Some(&before), None), ["name"], "a delete clears it");
    }
}
