//! Writing a recorded state back: a resource is updated to a snapshot, created again
//! from one (with its id, a version past the one it had, so an etag read before its
//! deletion never matches), or deleted when the state to go back to is "none".
//!
//! A snapshot was valid when it was taken, so its fields are written as they are; what
//! may have gone since is checked: links and connections to rows no longer in the
//! world are left out, an event's story that is gone is unset, and a story or world
//! that becomes PUBLIC again counts against its owner's quota.

use std::collections::BTreeMap;

use fabula_contracts::pb::story::{Event, Story, Visibility, World, snapshot::Resource};
use fabula_store::{
    db::now_micros,
    error::{Error, Result, etag_mismatch, not_found},
    pagination::Bind,
};
use prost_types::Timestamp;
use sqlx::{Any, Transaction};
use uuid::Uuid;

use crate::{
    config::Quotas,
    links::{self, Target},
    quotas::{self, Public},
    revisions::record::{Described, noun, to_micros, version_of},
    stories, words,
};

/// Puts a resource that is `current` (`None`: it does not exist) into `target`
/// (`None`: delete it). The caller has checked access and the etag; ABORTED when the
/// resource changed (or came back) since `current` was read.
pub async fn apply(
    tx: &mut Transaction<'static, Any>,
    quotas: &Quotas,
    current: Option<&Resource>,
    target: Option<&Resource>,
) -> Result<()> {
    let rows = match (current, target) {
        (None, None) => Ok(0),
        (Some(current), None) => delete(tx, current).await,
        (current, Some(target)) => match target {
            Resource::World(world) => write_world(tx, quotas, current, world).await,
            Resource::Story(story) => write_story(tx, quotas, current, story).await,
            Resource::Entity(_) | Resource::Location(_) => write_child(tx, current, target).await,
            Resource::Event(event) => write_event(tx, current, event).await,
        },
    }?;
    if rows == 1 || (current.is_none() && target.is_none()) {
        Ok(())
    } else {
        Err(etag_mismatch(noun(target.or(current).map(Described::kind).unwrap_or_default())))
    }
}

/// The version a conditional write expects: the current one, or -1 for none.
fn expected(current: Option<&Resource>) -> i64 {
    current.map_or(-1, |c| version_of(c.etag()))
}

fn uuid(id: &str) -> Result<Uuid> {
    Uuid::try_parse(id).map_err(|_| Error::Internal(format!("a snapshot with a bad id {id}")))
}

/// A snapshot's create time as stored; now when it has none.
fn micros(time: Option<Timestamp>) -> i64 {
    time.map_or_else(now_micros, to_micros)
}

fn table(resource: &Resource) -> &'static str {
    match resource {
        Resource::World(_) => "worlds",
        Resource::Story(_) => "stories",
        Resource::Entity(_) => "entities",
        Resource::Location(_) => "locations",
        Resource::Event(_) => "events",
    }
}

async fn delete(tx: &mut Transaction<'static, Any>, current: &Resource) -> Result<u64> {
    if matches!(current, Resource::World(_)) {
        return Err(Error::Internal("a world is never deleted by going back".into()));
    }
    let sql = format!("DELETE FROM {} WHERE id = $1 AND version = $2", table(current));
    let deleted = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(current.id())
        .bind(expected(Some(current)))
        .execute(&mut **tx)
        .await?;
    Ok(deleted.rows_affected())
}

async fn write_world(
    tx: &mut Transaction<'static, Any>,
    quotas: &Quotas,
    current: Option<&Resource>,
    world: &World,
) -> Result<u64> {
    let Some(Resource::World(now)) = current else {
        return Err(not_found("world"));
    };
    if world.visibility == i32::from(Visibility::Public) && now.visibility != world.visibility {
        let owner = quotas::owner(tx, uuid(&now.owner_id)?).await?;
        quotas::check_public(tx, quotas, &owner, Public::Worlds, uuid(&world.id)?).await?;
    }
    let updated = sqlx::query(
        "UPDATE worlds SET name = $1, description = $2, world_type = $3, visibility = $4, version = version + 1, \
         update_time = $5 WHERE id = $6 AND version = $7",
    )
    .bind(&world.name)
    .bind(&world.description)
    .bind(world.world_type().as_str_name())
    .bind(world.visibility().as_str_name())
    .bind(now_micros())
    .bind(&world.id)
    .bind(expected(current))
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected())
}

async fn write_story(
    tx: &mut Transaction<'static, Any>,
    quotas: &Quotas,
    current: Option<&Resource>,
    story: &Story,
) -> Result<u64> {
    let (id, world_id) = (uuid(&story.id)?, uuid(&story.world_id)?);
    let was_public = matches!(current, Some(Resource::Story(s)) if s.visibility == i32::from(Visibility::Public));
    if story.visibility == i32::from(Visibility::Public) && !was_public {
        let owner = quotas::owner(tx, uuid(&story.owner_id)?).await?;
        quotas::check_public(tx, quotas, &owner, Public::Stories, id).await?;
    }
    let order = if story.order > 0 { stories::place(tx, world_id, story.order, Some(id)).await? } else { story.order };
    let measured = words::measure(&story.content, story.format());
    let written = sqlx::query(
        "INSERT INTO stories (id, world_id, owner_id, title, content, format, genre, visibility, sort_order, \
         summary, version, create_time, update_time, word_count, preview) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $15, $16) \
         ON CONFLICT (id) DO UPDATE SET title = excluded.title, content = excluded.content, format = excluded.format, \
         genre = excluded.genre, visibility = excluded.visibility, sort_order = excluded.sort_order, \
         summary = excluded.summary, version = stories.version + 1, update_time = excluded.update_time, \
         word_count = excluded.word_count, preview = excluded.preview WHERE stories.version = $14",
    )
    .bind(&story.id)
    .bind(&story.world_id)
    .bind(&story.owner_id)
    .bind(&story.title)
    .bind(&story.content)
    .bind(story.format().as_str_name())
    .bind(&story.genre)
    .bind(story.visibility().as_str_name())
    .bind(order)
    .bind(&story.summary)
    .bind(version_of(&story.etag) + 1)
    .bind(micros(story.create_time))
    .bind(now_micros())
    .bind(expected(current))
    .bind(measured.word_count)
    .bind(&measured.preview)
    .execute(&mut **tx)
    .await?;
    relink(tx, "story_entities", "story_id", id, world_id, Target::Entity, &story.entity_ids).await?;
    relink(tx, "story_locations", "story_id", id, world_id, Target::Location, &story.location_ids).await?;
    Ok(written.rows_affected())
}

/// An entity or a location: their columns only.
async fn write_child(tx: &mut Transaction<'static, Any>, current: Option<&Resource>, target: &Resource) -> Result<u64> {
    let query = match target {
        Resource::Entity(entity) => {
            let sorted: BTreeMap<&String, &String> = entity.attributes.iter().collect();
            let attributes = serde_json::to_string(&sorted).map_err(|e| Error::Internal(e.to_string()))?;
            sqlx::query(
                "INSERT INTO entities (id, world_id, name, entity_type, description, attributes, version, \
                 create_time, update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO UPDATE \
                 SET name = excluded.name, entity_type = excluded.entity_type, description = excluded.description, \
                 attributes = excluded.attributes, version = entities.version + 1, update_time = excluded.update_time \
                 WHERE entities.version = $10",
            )
            .bind(&entity.id)
            .bind(&entity.world_id)
            .bind(&entity.name)
            .bind(&entity.entity_type)
            .bind(&entity.description)
            .bind(attributes)
            .bind(version_of(&entity.etag) + 1)
            .bind(micros(entity.create_time))
            .bind(now_micros())
        }
        Resource::Location(location) => sqlx::query(
            "INSERT INTO locations (id, world_id, name, description, x, y, version, create_time, update_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             description = excluded.description, x = excluded.x, y = excluded.y, version = locations.version + 1, \
             update_time = excluded.update_time WHERE locations.version = $10",
        )
        .bind(&location.id)
        .bind(&location.world_id)
        .bind(&location.name)
        .bind(&location.description)
        .bind(location.coordinates.map(|c| c.x))
        .bind(location.coordinates.map(|c| c.y))
        .bind(version_of(&location.etag) + 1)
        .bind(micros(location.create_time))
        .bind(now_micros()),
        _ => return Err(Error::Internal(format!("{:?} is not an entity or a location", target.kind()))),
    };
    Ok(query.bind(expected(current)).execute(&mut **tx).await?.rows_affected())
}

async fn write_event(tx: &mut Transaction<'static, Any>, current: Option<&Resource>, event: &Event) -> Result<u64> {
    let (id, world_id) = (uuid(&event.id)?, uuid(&event.world_id)?);
    let story_id = match event.story_id.as_deref().map(uuid).transpose()? {
        Some(story) if links::missing_in_world(&mut **tx, Target::Story, world_id, &[story]).await?.is_empty() => {
            Some(story.to_string())
        }
        _ => None,
    };
    let written = sqlx::query(
        "INSERT INTO events (id, world_id, story_id, title, description, year, era, story_position, version, \
         create_time, update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO UPDATE \
         SET story_id = excluded.story_id, title = excluded.title, description = excluded.description, \
         year = excluded.year, era = excluded.era, story_position = excluded.story_position, \
         version = events.version + 1, update_time = excluded.update_time WHERE events.version = $12",
    )
    .bind(&event.id)
    .bind(&event.world_id)
    .bind(story_id)
    .bind(&event.title)
    .bind(&event.description)
    .bind(event.year)
    .bind(&event.era)
    .bind(event.story_position)
    .bind(version_of(&event.etag) + 1)
    .bind(micros(event.create_time))
    .bind(now_micros())
    .bind(expected(current))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    relink(tx, "event_entities", "event_id", id, world_id, Target::Entity, &event.entity_ids).await?;
    relink(tx, "event_locations", "event_id", id, world_id, Target::Location, &event.location_ids).await?;
    let targets: Vec<Uuid> =
        event.connections.iter().filter_map(|c| Uuid::try_parse(&c.target_event_id).ok()).collect();
    let gone = links::missing_in_world(&mut **tx, Target::Event, world_id, &targets).await?;
    let rows: Vec<Vec<Bind>> = event
        .connections
        .iter()
        .filter(|c| Uuid::try_parse(&c.target_event_id).is_ok_and(|t| !gone.contains(&t)))
        .map(|c| vec![Bind::Text(c.target_event_id.clone()), Bind::Text(c.relation.clone())])
        .collect();
    links::replace_rows(tx, "event_connections", "event_id", id, &["target_event_id", "relation"], &rows).await?;
    Ok(written)
}

/// Replaces the links in `table` of `owner` with `ids`, those still in the world.
async fn relink(
    tx: &mut Transaction<'static, Any>,
    table: &'static str,
    owner_column: &'static str,
    owner: Uuid,
    world_id: Uuid,
    target: Target,
    ids: &[String],
) -> Result<()> {
    let ids: Vec<Uuid> = ids.iter().filter_map(|id| Uuid::try_parse(id).ok()).collect();
    let gone = links::missing_in_world(&mut **tx, target, world_id, &ids).await?;
    let rows: Vec<Vec<Bind>> =
        ids.iter().filter(|id| !gone.contains(id)).map(|id| vec![Bind::Text(id.to_string())]).collect();
    links::replace_rows(tx, table, owner_column, owner, &["target_id"], &rows).await
}
