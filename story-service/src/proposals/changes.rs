//! One change of a proposal: checked when it is proposed or edited ([`prepare`],
//! [`edit`]), found stale or not when it is accepted ([`is_stale`]), and applied as a
//! write recorded as the proposal's ([`apply`]).
//!
//! Creates write a whole snapshot with [`crate::revisions::apply`], as a restore
//! does; links and fields read the resource as it is, change it, and write it back
//! the same way, so every write of a proposal goes through one conditional path.

use std::collections::HashSet;

use fabula_contracts::pb::story::{
    Change, ChangeEdit, Entity, Event, Location, ResourceKind, RevisionKind, SetField, change::Kind, change_edit,
    link_to_story::Item, snapshot::Resource,
};
use fabula_runtime::{
    auth::Caller,
    errors::FieldViolations,
    rules::{self, Checks, Rule},
};
use prost_reflect::Value;
use sqlx::{Any, AnyConnection, Transaction};
use uuid::Uuid;

use fabula_store::error::{Error, Result};

use crate::{
    config::Quotas,
    domain, entities,
    links::{self, Target},
    revisions::{self, Write, record::Described},
};

/// The ids of what one proposal creates: a link or an event may name them.
pub type Created = HashSet<String>;

/// The fields a `set_field` may set, by kind of resource, with their rules (none:
/// an integer).
fn settable(kind: ResourceKind, field: &str) -> Option<Option<&'static Rule>> {
    use rules::story::{entity, event, location, story, world};
    Some(match (kind, field) {
        (ResourceKind::World, "description") => Some(&world::DESCRIPTION),
        (ResourceKind::Story, "summary") => Some(&story::SUMMARY),
        (ResourceKind::Entity, "name") => Some(&entity::NAME),
        (ResourceKind::Entity, "entity_type") => Some(&entity::ENTITY_TYPE),
        (ResourceKind::Entity, "description") => Some(&entity::DESCRIPTION),
        (ResourceKind::Location, "name") => Some(&location::NAME),
        (ResourceKind::Location, "description") => Some(&location::DESCRIPTION),
        (ResourceKind::Event, "title") => Some(&event::TITLE),
        (ResourceKind::Event, "description") => Some(&event::DESCRIPTION),
        (ResourceKind::Event, "era") => Some(&event::ERA),
        (ResourceKind::Event, "year" | "story_position") => None,
        _ => return None,
    })
}

/// A proposed value of a settable field, as stored: checked by its rule, or an integer.
fn field_value(rule: Option<&Rule>, value: &str) -> Result<String, String> {
    match rule {
        Some(rule) => rules::text(value, rule),
        None => value.trim().parse::<i64>().map(|n| n.to_string()).map_err(|_| "is not a whole number".to_owned()),
    }
}

/// A proposed entity as it would be stored, its problems filed under `field.<name>`.
fn entity(sent: &Entity, field: &str, violations: &mut FieldViolations) -> Entity {
    use rules::story::entity::{DESCRIPTION, NAME};
    Entity {
        id: sent.id.clone(),
        name: violations.check(&format!("{field}.name"), rules::text(&sent.name, &NAME)).unwrap_or_default(),
        entity_type: violations
            .check(&format!("{field}.entity_type"), entities::entity_type(&sent.entity_type))
            .unwrap_or_default(),
        description: violations
            .check(&format!("{field}.description"), rules::text(&sent.description, &DESCRIPTION))
            .unwrap_or_default(),
        attributes: entities::attributes(&sent.attributes, &format!("{field}.attributes"), violations)
            .into_iter()
            .collect(),
        ..Entity::default()
    }
}

/// A proposed location as it would be stored (with no coordinates).
fn location(sent: &Location, field: &str, violations: &mut FieldViolations) -> Location {
    use rules::story::location::{DESCRIPTION, NAME};
    Location {
        id: sent.id.clone(),
        name: violations.check(&format!("{field}.name"), rules::text(&sent.name, &NAME)).unwrap_or_default(),
        description: violations
            .check(&format!("{field}.description"), rules::text(&sent.description, &DESCRIPTION))
            .unwrap_or_default(),
        ..Location::default()
    }
}

/// A proposed event as it would be stored (with no connections); its story and links
/// are checked against the world by [`prepare`].
fn event(sent: &Event, field: &str, violations: &mut FieldViolations) -> Event {
    use rules::story::event::{DESCRIPTION, ENTITY_IDS, ERA, LOCATION_IDS, TITLE};
    let text = |name: &str, value: &str, rule: &Rule, violations: &mut FieldViolations| {
        violations.check(&format!("{field}.{name}"), rules::text(value, rule)).unwrap_or_default()
    };
    let story_id = sent.story_id.as_deref().filter(|id| !id.is_empty());
    if let Some(id) = story_id {
        violations.check(&format!("{field}.story_id"), domain::id(id));
    }
    Event {
        id: sent.id.clone(),
        story_id: story_id.map(str::to_owned),
        title: text("title", &sent.title, &TITLE, violations),
        description: text("description", &sent.description, &DESCRIPTION, violations),
        era: text("era", &sent.era, &ERA, violations),
        year: sent.year,
        story_position: sent.story_position,
        entity_ids: ENTITY_IDS
            .check_list(&format!("{field}.entity_ids"), &sent.entity_ids, violations)
            .unwrap_or_default(),
        location_ids: LOCATION_IDS
            .check_list(&format!("{field}.location_ids"), &sent.location_ids, violations)
            .unwrap_or_default(),
        ..Event::default()
    }
}

/// The id of a create: the one sent (a valid id no resource has, checked by
/// [`prepare`]) or a new one.
fn create_id(sent: &str, field: &str, violations: &mut FieldViolations) -> String {
    if sent.is_empty() {
        return Uuid::now_v7().to_string();
    }
    violations.check(&format!("{field}.id"), domain::id(sent)).map(|id| id.to_string()).unwrap_or_default()
}

/// The id a create change makes, if it is one.
pub fn created_id(change: &Change) -> Option<&str> {
    match change.kind.as_ref()? {
        Kind::CreateEntity(e) => Some(&e.id),
        Kind::CreateLocation(l) => Some(&l.id),
        Kind::CreateEvent(e) => Some(&e.id),
        Kind::Link(_) | Kind::SetField(_) => None,
    }
}

/// Whether `change` sets a field of the world itself, which only its owner may.
pub fn sets_the_world(change: &Change) -> bool {
    matches!(&change.kind, Some(Kind::SetField(set)) if set.resource_kind() == ResourceKind::World)
}

/// The create change a link or an event of the proposal depends on, by the id it makes.
pub fn depends_on(change: &Change) -> Vec<&str> {
    match change.kind.as_ref() {
        Some(Kind::Link(link)) => match link.item.as_ref() {
            Some(Item::EntityId(id) | Item::LocationId(id)) => vec![id],
            None => vec![],
        },
        Some(Kind::CreateEvent(e)) => e.entity_ids.iter().chain(&e.location_ids).map(String::as_str).collect(),
        _ => vec![],
    }
}

/// Normalises the proposed value of `change` (as [`entity`], [`location`], [`event`]
/// and the field rules say), filing problems under `field`. What needs the database
/// is checked by [`prepare`].
pub fn check(change: &mut Change, field: &str, violations: &mut FieldViolations) {
    violations.check(&format!("{field}.reason"), rules::text(&change.reason, &rules::story::change::REASON));
    violations.check(&format!("{field}.etag"), rules::text(&change.etag, &rules::story::change::ETAG));
    match change.kind.as_mut() {
        None => violations.add(format!("{field}.kind"), "is required: name one kind of change"),
        Some(Kind::CreateEntity(sent)) => {
            let id = create_id(&sent.id, &format!("{field}.create_entity"), violations);
            *sent = Entity { id, ..entity(sent, &format!("{field}.create_entity"), violations) };
        }
        Some(Kind::CreateLocation(sent)) => {
            let id = create_id(&sent.id, &format!("{field}.create_location"), violations);
            *sent = Location { id, ..location(sent, &format!("{field}.create_location"), violations) };
        }
        Some(Kind::CreateEvent(sent)) => {
            let id = create_id(&sent.id, &format!("{field}.create_event"), violations);
            *sent = Event { id, ..event(sent, &format!("{field}.create_event"), violations) };
        }
        Some(Kind::Link(link)) => {
            violations.check(&format!("{field}.link.story_id"), domain::id(&link.story_id));
            let (name, id) = match link.item.as_ref() {
                Some(Item::EntityId(id)) => ("entity_id", id.as_str()),
                Some(Item::LocationId(id)) => ("location_id", id.as_str()),
                None => ("item", ""),
            };
            violations.check(&format!("{field}.link.{name}"), domain::id(id));
        }
        Some(Kind::SetField(set)) => check_set_field(set, field, violations),
    }
}

fn check_set_field(set: &mut SetField, field: &str, violations: &mut FieldViolations) {
    violations.check(&format!("{field}.set_field.resource_id"), domain::id(&set.resource_id));
    match settable(set.resource_kind(), &set.field) {
        None => violations.add(format!("{field}.set_field.field"), "is not a field a proposal may set on this kind"),
        Some(rule) => {
            let value = field_value(rule, &set.proposed_value);
            if let Some(value) = violations.check(&format!("{field}.set_field.proposed_value"), value) {
                set.proposed_value = value;
            }
        }
    }
}

/// Checks what `change` (checked by [`check`]) names against world `world_id` as it
/// is (a link's story and item, an event's story and links, a field's resource: in
/// the world, or made by the proposal, `created`; a create's id: free), and records
/// what the change was proposed against: a field's current value, the etag of its
/// resource or of a link's story. Problems go under `field`.
pub async fn prepare(
    conn: &mut AnyConnection,
    world_id: Uuid,
    change: &mut Change,
    created: &Created,
    field: &str,
    violations: &mut FieldViolations,
) -> Result<()> {
    let missing = "is not in the proposal's world, nor made by the proposal";
    match change.kind.as_mut() {
        Some(Kind::CreateEntity(_) | Kind::CreateLocation(_)) => {}
        Some(Kind::CreateEvent(event)) => {
            if let Some(story) = event.story_id.as_deref()
                && !in_world(conn, Target::Story, world_id, story, &Created::new()).await?
            {
                violations.add(format!("{field}.create_event.story_id"), missing);
            }
            for (name, target, ids) in [
                ("entity_ids", Target::Entity, &event.entity_ids),
                ("location_ids", Target::Location, &event.location_ids),
            ] {
                for id in ids {
                    if !in_world(conn, target, world_id, id, created).await? {
                        violations.add(format!("{field}.create_event.{name}"), missing);
                    }
                }
            }
        }
        Some(Kind::Link(link)) => {
            let story = revisions::current(conn, ResourceKind::Story, parse(&link.story_id)?).await?;
            match story.filter(|s| s.world_id() == world_id.to_string()) {
                Some(story) if change.etag.is_empty() => change.etag = story.etag().to_owned(),
                Some(_) => {}
                None => violations.add(format!("{field}.link.story_id"), missing),
            }
            let (target, id) = link_item(link.item.as_ref())?;
            if !in_world(conn, target, world_id, id, created).await? {
                violations.add(format!("{field}.link"), format!("its item {missing}"));
            }
        }
        Some(Kind::SetField(set)) => {
            let now = revisions::current(conn, set.resource_kind(), parse(&set.resource_id)?).await?;
            match now.filter(|r| r.world_id() == world_id.to_string()) {
                Some(resource) => {
                    set.current_value = read_field(&resource, &set.field);
                    if change.etag.is_empty() {
                        change.etag = resource.etag().to_owned();
                    }
                }
                None => violations.add(format!("{field}.set_field.resource_id"), missing),
            }
        }
        None => {}
    }
    if let Some(id) = created_id(change).filter(|id| !id.is_empty())
        && taken(conn, change, id).await?
    {
        violations.add(format!("{field}.id"), "is the id of an existing resource");
    }
    Ok(())
}

/// A checked id as a UUID.
fn parse(id: &str) -> Result<Uuid> {
    Uuid::try_parse(id).map_err(|_| Error::Internal(format!("an unchecked id {id}")))
}

fn link_item(item: Option<&Item>) -> Result<(Target, &str)> {
    match item {
        Some(Item::EntityId(id)) => Ok((Target::Entity, id)),
        Some(Item::LocationId(id)) => Ok((Target::Location, id)),
        None => Err(Error::Internal("a link with no item".into())),
    }
}

/// Whether `id` of `target` is in world `world_id`, or among `created`.
async fn in_world(
    conn: &mut AnyConnection,
    target: Target,
    world_id: Uuid,
    id: &str,
    created: &Created,
) -> Result<bool> {
    if created.contains(id) {
        return Ok(true);
    }
    let Ok(id) = Uuid::try_parse(id) else { return Ok(false) };
    Ok(links::missing_in_world(&mut *conn, target, world_id, &[id]).await?.is_empty())
}

/// Whether the id a create would make is taken by a row of its table.
async fn taken(conn: &mut AnyConnection, change: &Change, id: &str) -> Result<bool> {
    let Ok(id) = Uuid::try_parse(id) else { return Ok(false) };
    let kind = match change.kind.as_ref() {
        Some(Kind::CreateEntity(_)) => ResourceKind::Entity,
        Some(Kind::CreateLocation(_)) => ResourceKind::Location,
        _ => ResourceKind::Event,
    };
    Ok(revisions::current(conn, kind, id).await?.is_some())
}

/// Puts the author's `edit` into `change`, filing problems under `field`: the value
/// must be of the change's kind, and is checked as a proposed one is.
pub fn edit(change: &mut Change, edit: &ChangeEdit, field: &str, violations: &mut FieldViolations) {
    let mismatch = "is not of the kind of the change it edits";
    match (change.kind.as_mut(), edit.value.as_ref()) {
        (Some(Kind::CreateEntity(now)), Some(change_edit::Value::Entity(sent))) => {
            *now = Entity { id: now.id.clone(), ..entity(sent, &format!("{field}.entity"), violations) };
        }
        (Some(Kind::CreateLocation(now)), Some(change_edit::Value::Location(sent))) => {
            *now = Location { id: now.id.clone(), ..location(sent, &format!("{field}.location"), violations) };
        }
        (Some(Kind::CreateEvent(now)), Some(change_edit::Value::Event(sent))) => {
            let edited = event(sent, &format!("{field}.event"), violations);
            // The story and links stay as proposed: they were checked against the world.
            *now = Event {
                id: now.id.clone(),
                story_id: now.story_id.take(),
                entity_ids: std::mem::take(&mut now.entity_ids),
                location_ids: std::mem::take(&mut now.location_ids),
                ..edited
            };
        }
        (Some(Kind::SetField(set)), Some(change_edit::Value::Text(text))) => {
            let rule = settable(set.resource_kind(), &set.field).flatten();
            if let Some(value) = violations.check(&format!("{field}.text"), field_value(rule, text)) {
                set.proposed_value = value;
            }
        }
        (_, None) => violations.add(format!("{field}.value"), "is required"),
        _ => violations.add(format!("{field}.value"), mismatch),
    }
}

/// Whether `change` no longer fits world `world_id` as it is now (see the contract:
/// a same-named item exists, what it names is gone, its resource changed since).
pub async fn is_stale(conn: &mut AnyConnection, world_id: Uuid, change: &Change, created: &Created) -> Result<bool> {
    let world = world_id.to_string();
    Ok(match change.kind.as_ref() {
        Some(Kind::CreateEntity(e)) => named(conn, "entities", "name", &world, &e.name, None).await?,
        Some(Kind::CreateLocation(l)) => named(conn, "locations", "name", &world, &l.name, None).await?,
        Some(Kind::CreateEvent(e)) => {
            named(conn, "events", "title", &world, &e.title, Some(e.story_id.as_deref().unwrap_or_default())).await?
        }
        Some(Kind::Link(link)) => {
            let (target, id) = link_item(link.item.as_ref())?;
            !in_world(conn, Target::Story, world_id, &link.story_id, &Created::new()).await?
                || !in_world(conn, target, world_id, id, created).await?
        }
        Some(Kind::SetField(set)) => {
            let now = revisions::current(conn, set.resource_kind(), parse(&set.resource_id)?).await?;
            now.is_none_or(|resource| resource.etag() != change.etag)
        }
        None => false,
    })
}

/// Whether world `world` has a row in `table` whose `column` is `value`, ignoring
/// case; for events, in the story `story` ("" for none).
async fn named(
    conn: &mut AnyConnection,
    table: &str,
    column: &str,
    world: &str,
    value: &str,
    story: Option<&str>,
) -> Result<bool> {
    let in_story = if story.is_some() { " AND COALESCE(story_id, '') = $3" } else { "" };
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE world_id = $1 AND LOWER({column}) = LOWER($2){in_story}");
    let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(world).bind(value);
    if let Some(story) = story {
        query = query.bind(story);
    }
    Ok(query.fetch_one(conn).await? > 0)
}

/// Who applies a change: the accepting caller, for the proposal's job and the proposal.
pub struct Applier<'a> {
    pub caller: &'a Caller,
    pub quotas: &'a Quotas,
    pub world_id: Uuid,
    pub job_id: Uuid,
    pub proposal_id: Uuid,
}

impl Applier<'_> {
    /// Writes `change` (found not stale) and records its revision.
    pub async fn apply(&self, tx: &mut Transaction<'static, Any>, change: &Change) -> Result<()> {
        let world_id = self.world_id.to_string();
        let (kind, id, target) = match change.kind.as_ref() {
            Some(Kind::CreateEntity(e)) => {
                (ResourceKind::Entity, &e.id, Resource::Entity(Entity { world_id, ..e.clone() }))
            }
            Some(Kind::CreateLocation(l)) => {
                (ResourceKind::Location, &l.id, Resource::Location(Location { world_id, ..l.clone() }))
            }
            Some(Kind::CreateEvent(e)) => {
                (ResourceKind::Event, &e.id, Resource::Event(Event { world_id, ..e.clone() }))
            }
            Some(Kind::Link(link)) => return self.link(tx, link).await,
            Some(Kind::SetField(set)) => return self.set(tx, set).await,
            None => return Ok(()),
        };
        revisions::apply::apply(tx, self.quotas, None, Some(&target)).await?;
        self.record(tx, RevisionKind::Create, kind, parse(id)?, None).await
    }

    async fn link(
        &self,
        tx: &mut Transaction<'static, Any>,
        link: &fabula_contracts::pb::story::LinkToStory,
    ) -> Result<()> {
        let id = parse(&link.story_id)?;
        let Some(Resource::Story(story)) = revisions::current(tx, ResourceKind::Story, id).await? else {
            return Err(Error::Internal(format!("story {id} went while its link was applied")));
        };
        let mut linked = story.clone();
        let ids = match link.item.as_ref() {
            Some(Item::EntityId(item)) => (&mut linked.entity_ids, item),
            Some(Item::LocationId(item)) => (&mut linked.location_ids, item),
            None => return Ok(()),
        };
        if ids.0.contains(ids.1) {
            return Ok(());
        }
        ids.0.push(ids.1.clone());
        let before = Resource::Story(story);
        revisions::apply::apply(tx, self.quotas, Some(&before), Some(&Resource::Story(linked))).await?;
        self.record(tx, RevisionKind::Update, ResourceKind::Story, id, Some(before)).await
    }

    async fn set(&self, tx: &mut Transaction<'static, Any>, set: &SetField) -> Result<()> {
        let (kind, id) = (set.resource_kind(), parse(&set.resource_id)?);
        let Some(before) = revisions::current(tx, kind, id).await? else {
            return Err(Error::Internal(format!("{id} went while its field was set")));
        };
        let after = write_field(&before, &set.field, &set.proposed_value)?;
        revisions::apply::apply(tx, self.quotas, Some(&before), Some(&after)).await?;
        self.record(tx, RevisionKind::Update, kind, id, Some(before)).await
    }

    async fn record(
        &self,
        tx: &mut Transaction<'static, Any>,
        kind: RevisionKind,
        resource_kind: ResourceKind,
        id: Uuid,
        before: Option<Resource>,
    ) -> Result<()> {
        let write =
            Write { proposal: Some((self.job_id, self.proposal_id)), ..Write::of(kind, resource_kind, id, before) };
        revisions::record(tx, self.caller, write).await.map(|_| ())
    }
}

/// The value of `field` of `resource`, as text.
fn read_field(resource: &Resource, field: &str) -> String {
    match resource.dynamic().get_field_by_name(field).as_deref() {
        Some(Value::String(text)) => text.clone(),
        Some(Value::I64(number)) => number.to_string(),
        _ => String::new(),
    }
}

/// `resource` with `field` set to `value` (checked by [`field_value`]).
fn write_field(resource: &Resource, field: &str, value: &str) -> Result<Resource> {
    let mut dynamic = resource.dynamic();
    let value = match dynamic.get_field_by_name(field).as_deref() {
        Some(Value::I64(_)) => Value::I64(value.parse().map_err(|_| Error::Internal(format!("{field} {value}")))?),
        _ => Value::String(value.to_owned()),
    };
    dynamic.set_field_by_name(field, value);
    let bad = |e: prost::DecodeError| Error::Internal(format!("a field set: {e}"));
    Ok(match resource {
        Resource::World(_) => Resource::World(dynamic.transcode_to().map_err(bad)?),
        Resource::Story(_) => Resource::Story(dynamic.transcode_to().map_err(bad)?),
        Resource::Entity(_) => Resource::Entity(dynamic.transcode_to().map_err(bad)?),
        Resource::Location(_) => Resource::Location(dynamic.transcode_to().map_err(bad)?),
        Resource::Event(_) => Resource::Event(dynamic.transcode_to().map_err(bad)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_and_written_by_name() {
        let event = Resource::Event(Event { title: "Dawn".into(), year: 12, ..Event::default() });
        assert_eq!((read_field(&event, "title"), read_field(&event, "year")), ("Dawn".into(), "12".into()));
        let Resource::Event(changed) = write_field(&event, "year", "-40").unwrap() else { panic!("an event") };
        assert_eq!((changed.year, changed.title.as_str()), (-40, "Dawn"));
    }

    #[test]
    fn only_declared_fields_may_be_set() {
        assert!(settable(ResourceKind::World, "description").is_some());
        assert!(settable(ResourceKind::World, "visibility").is_none(), "a proposal never changes who sees a world");
        assert_eq!(settable(ResourceKind::Event, "year"), Some(None), "an integer");
        assert_eq!(field_value(None, " 12 "), Ok("12".into()));
        assert!(field_value(None, "twelve").is_err());
    }
}
