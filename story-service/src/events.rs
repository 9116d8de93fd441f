//! EventService: what happens when in a world, and the timeline the events make.
//!
//! Events have no visibility of their own: they are readable when their world is,
//! and changed by those who may write its children ([`crate::children`] decides, as
//! for entities and locations). An event may name the story it comes from, link
//! entities and locations ([`crate::links`]) and connect to other events
//! (`event_connections`, kept in order); each id must name a row of the same world,
//! else INVALID_ARGUMENT. Deleting an event removes the connections pointing at it
//! (ON DELETE CASCADE). Lists and the timeline run in the world's calendar: by year,
//! then by place in the story, then by id; the timeline groups them into runs of one
//! era, compared without case.

use fabula_runtime::rules::Checks;
use std::collections::HashMap;

use fabula_contracts::pb::story::{
    CreateEventRequest, DeleteEventRequest, Event, EventConnection, GetEventRequest, GetTimelineRequest,
    ListEventsRequest, ListEventsResponse, ResourceKind, RevisionKind, Timeline, TimelineEra, UpdateEventRequest,
    event_service_server::EventService,
};
use fabula_runtime::{
    auth::{Caller, caller},
    errors::FieldViolations,
    rules::{self, story::event as declared},
};
use fabula_store::{
    db::now_micros,
    error::{Error, Result, etag_mismatch, invalid},
    filter,
    pagination::{Bind, Key, Listing, Page, Sql},
};
use sqlx::{Any, AnyConnection, Row, Transaction, any::AnyRow};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    State,
    access::world_access,
    children::{self, Begun, CreateTarget, Stamps, WorldChild},
    domain,
    links::{self, Linkable, Links, Owner, Scope, Target},
    revisions::{self, Write},
    update::{self, Mask},
};

const UPDATABLE: &[&str] = rules::story::update_event_request::UPDATE_MASK.paths;
const LISTING: Listing = Listing {
    page_size: &rules::story::list_events_request::PAGE_SIZE,
    page_token: &rules::story::list_events_request::PAGE_TOKEN,
    filter: &rules::story::list_events_request::FILTER,
    columns: &[("era", "t.era"), ("story_id", "t.story_id")],
};
/// The timeline's order, the id breaking ties.
const ORDER: &[&str] = &["t.year", "t.story_position", "t.id"];

pub struct EventsApi(pub State);

impl WorldChild for Event {
    const TABLE: &'static str = "events";
    const NOUN: &'static str = "event";
    const KIND: ResourceKind = ResourceKind::Event;
    const COLUMNS: &'static str = "t.id, t.world_id, t.story_id, t.title, t.description, t.year, t.era, \
                                   t.story_position, t.version, t.create_time, t.update_time";

    /// The event without its links and connections: see [`complete`].
    fn from_row(row: &AnyRow) -> Result<Self> {
        let Stamps { etag, create_time, update_time } = Stamps::read(row, 8)?;
        Ok(Event {
            id: row.try_get(0)?,
            world_id: row.try_get(1)?,
            story_id: row.try_get(2)?,
            title: row.try_get(3)?,
            description: row.try_get(4)?,
            year: row.try_get(5)?,
            era: row.try_get(6)?,
            story_position: row.try_get(7)?,
            entity_ids: Vec::new(),
            location_ids: Vec::new(),
            connections: Vec::new(),
            etag,
            create_time,
            update_time,
        })
    }

    fn id(&self) -> &str {
        &self.id
    }
}

impl Linkable for Event {
    const OWNER: Owner = Owner::Event;

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

/// The scalar fields of an event a caller may set, validated.
#[derive(Debug, Default, PartialEq)]
struct EventFields {
    story_id: Option<Uuid>,
    title: String,
    description: String,
    year: i64,
    era: String,
    story_position: i64,
}

impl EventFields {
    /// Validates the scalar fields of `event`, filing problems under `event.<field>`.
    fn check(event: &Event, violations: &mut FieldViolations) -> Self {
        Self {
            story_id: violations.check("event.story_id", story_id(event.story_id.as_deref())).flatten(),
            title: violations.check("event.title", rules::text(&event.title, &declared::TITLE)).unwrap_or_default(),
            description: violations
                .check("event.description", rules::text(&event.description, &declared::DESCRIPTION))
                .unwrap_or_default(),
            year: event.year,
            era: violations.check("event.era", rules::text(&event.era, &declared::ERA)).unwrap_or_default(),
            story_position: event.story_position,
        }
    }
}

/// An optional story id: absent or empty is none.
fn story_id(value: Option<&str>) -> Result<Option<Uuid>, String> {
    value.map_or(Ok(None), domain::optional_id)
}

/// A connection to another event, validated.
#[derive(Debug, PartialEq)]
struct Connection {
    /// Its place in the request, to name it in errors.
    index: usize,
    target: Uuid,
    relation: String,
}

/// The connections of event `id`, validated: each to another event, with a
/// relation as declared. Problems are filed under
/// `event.connections[i].<field>`.
fn connections(sent: &[EventConnection], id: Uuid, violations: &mut FieldViolations) -> Vec<Connection> {
    if let Err(problem) = declared::CONNECTIONS.check_count(sent.len()) {
        violations.add("event.connections", problem);
        return Vec::new();
    }
    let mut parsed = Vec::with_capacity(sent.len());
    for (index, connection) in sent.iter().enumerate() {
        let field = |name: &str| format!("event.connections[{index}].{name}");
        let target = violations.check(&field("target_event_id"), domain::id(&connection.target_event_id));
        let relation = violations
            .check(&field("relation"), rules::text(&connection.relation, &rules::story::event_connection::RELATION));
        match (target, relation) {
            (Some(target), _) if target == id => {
                violations.add(field("target_event_id"), "an event cannot connect to itself");
            }
            (Some(target), Some(relation)) => parsed.push(Connection { index, target, relation }),
            _ => {}
        }
    }
    parsed
}

/// A create or an update of an event, validated. The connections and links are
/// `None` when they are not part of the write, and stay as they are.
struct EventWrite {
    fields: EventFields,
    connections: Option<Vec<Connection>>,
    links: Links,
}

impl EventWrite {
    /// Validates `event`, which will be event `id`, taking the lists for which
    /// `written(path)` holds.
    fn parse(event: &Event, id: Uuid, written: impl Fn(&str) -> bool, violations: &mut FieldViolations) -> Self {
        let entity_ids = written("entity_ids").then_some(event.entity_ids.as_slice());
        let location_ids = written("location_ids").then_some(event.location_ids.as_slice());
        Self {
            fields: EventFields::check(event, violations),
            connections: written("connections").then(|| connections(&event.connections, id, violations)),
            links: Links::parse(Owner::Event, entity_ids, location_ids, violations),
        }
    }

    /// NOT_FOUND naming each id that names no story, event, entity or location of `world_id`.
    async fn check(&self, conn: &mut AnyConnection, world_id: Uuid) -> Result<()> {
        let mut missing = FieldViolations::new();
        let violations = &mut missing;
        if let Some(story) = self.fields.story_id {
            links::check_in_world(&mut *conn, Target::Story, world_id, story, "event.story_id", violations).await?;
        }
        if let Some(connections) = &self.connections {
            let targets: Vec<Uuid> = connections.iter().map(|c| c.target).collect();
            let missing = links::missing_in_world(&mut *conn, Target::Event, world_id, &targets).await?;
            for connection in connections.iter().filter(|c| missing.contains(&c.target)) {
                let field = format!("event.connections[{}].target_event_id", connection.index);
                violations.add(field, Target::Event.not_in_world(connection.target));
            }
        }
        self.links.check_into(conn, world_id, violations).await?;
        Ok(missing.finish_missing()?)
    }

    /// Replaces the connections and links of event `id` that are part of the write.
    async fn save(&self, conn: &mut AnyConnection, id: Uuid) -> Result<()> {
        if let Some(connections) = &self.connections {
            let rows: Vec<Vec<Bind>> = connections
                .iter()
                .map(|c| vec![Bind::Text(c.target.to_string()), Bind::Text(c.relation.clone())])
                .collect();
            let columns = &["target_event_id", "relation"];
            links::replace_rows(&mut *conn, "event_connections", "event_id", id, columns, &rows).await?;
        }
        self.links.save(conn, id).await
    }
}

/// Whether `path` of `event` was sent, for an update without a mask.
fn populated(event: &Event, path: &str) -> bool {
    match path {
        "story_id" => event.story_id.is_some(),
        "title" => !event.title.is_empty(),
        "description" => !event.description.is_empty(),
        "year" => event.year != 0,
        "era" => !event.era.is_empty(),
        "entity_ids" => !event.entity_ids.is_empty(),
        "location_ids" => !event.location_ids.is_empty(),
        "story_position" => event.story_position != 0,
        "connections" => !event.connections.is_empty(),
        _ => false,
    }
}

/// `current` with the scalar fields of `mask` taken from `sent`, and `sent`'s lists
/// (which [`EventWrite::parse`] takes only when masked).
fn merge(sent: Event, current: Event, mask: &Mask) -> Event {
    Event {
        story_id: if mask.has("story_id") { sent.story_id } else { current.story_id },
        title: if mask.has("title") { sent.title } else { current.title },
        description: if mask.has("description") { sent.description } else { current.description },
        year: if mask.has("year") { sent.year } else { current.year },
        era: if mask.has("era") { sent.era } else { current.era },
        story_position: if mask.has("story_position") { sent.story_position } else { current.story_position },
        entity_ids: sent.entity_ids,
        location_ids: sent.location_ids,
        connections: sent.connections,
        ..current
    }
}

/// The key of `event` in the timeline's order.
fn sort_key(event: &Event) -> Vec<Key> {
    vec![Key::Int(event.year), Key::Int(event.story_position), Key::Text(event.id.clone())]
}

/// The timeline's events, in order, grouped into runs that share an era: eras are
/// compared without case or surrounding spaces ("Age of Sail" and "age of sail" are
/// one), and a run is named as its first event names its era.
fn group_by_era(events: Vec<Event>) -> Vec<TimelineEra> {
    let same = |a: &str, b: &str| a.trim().to_lowercase() == b.trim().to_lowercase();
    let mut eras: Vec<TimelineEra> = Vec::new();
    for event in events {
        match eras.last_mut() {
            Some(era) if same(&era.era, &event.era) => era.events.push(event),
            _ => eras.push(TimelineEra { era: event.era.clone(), events: vec![event] }),
        }
    }
    eras
}

/// Fills the links and connections of `events`, the rows of `scope`, in two queries.
async fn complete(conn: &mut AnyConnection, scope: &Scope, events: &mut [Event]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    links::attach(&mut *conn, scope, events).await?;
    let mut sql = Sql::new("SELECT c.event_id, c.target_event_id, c.relation FROM event_connections c WHERE ");
    scope.push_condition(&mut sql, "c.event_id", Owner::Event);
    sql.push(" ORDER BY c.position");
    let mut found: HashMap<String, Vec<EventConnection>> = HashMap::new();
    for row in sql.query().fetch_all(&mut *conn).await? {
        let connection = EventConnection { target_event_id: row.try_get(1)?, relation: row.try_get(2)? };
        found.entry(row.try_get(0)?).or_default().push(connection);
    }
    for event in events {
        event.connections = found.remove(&event.id).unwrap_or_default();
    }
    Ok(())
}

/// `event` with its links and connections.
pub(crate) async fn complete_one(conn: &mut AnyConnection, mut event: Event) -> Result<Event> {
    let scope = Scope::Rows(vec![event.id.clone()]);
    complete(conn, &scope, std::slice::from_mut(&mut event)).await?;
    Ok(event)
}

/// Commits a write of event `id` and returns the event as it now is.
async fn commit(mut tx: Transaction<'static, Any>, id: Uuid) -> Result<Event> {
    let event: Event = children::fetch(&mut *tx, id).await?;
    let event = complete_one(&mut tx, event).await?;
    tx.commit().await?;
    Ok(event)
}

/// Stores the new event `id` of world `world_id`.
async fn insert(conn: &mut AnyConnection, id: Uuid, world_id: Uuid, fields: &EventFields) -> Result<()> {
    sqlx::query(
        "INSERT INTO events (id, world_id, story_id, title, description, year, era, story_position, version, \
         create_time, update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9)",
    )
    .bind(id.to_string())
    .bind(world_id.to_string())
    .bind(fields.story_id.map(|story| story.to_string()))
    .bind(&fields.title)
    .bind(&fields.description)
    .bind(fields.year)
    .bind(&fields.era)
    .bind(fields.story_position)
    .bind(now_micros())
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes `fields` over event `id` if it is still at `version`; ABORTED otherwise.
async fn overwrite(conn: &mut AnyConnection, id: Uuid, version: i64, fields: &EventFields) -> Result<()> {
    let updated = sqlx::query(
        "UPDATE events SET story_id = $1, title = $2, description = $3, year = $4, era = $5, story_position = $6, \
         version = version + 1, update_time = $7 WHERE id = $8 AND version = $9",
    )
    .bind(fields.story_id.map(|story| story.to_string()))
    .bind(&fields.title)
    .bind(&fields.description)
    .bind(fields.year)
    .bind(&fields.era)
    .bind(fields.story_position)
    .bind(now_micros())
    .bind(id.to_string())
    .bind(version)
    .execute(conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(etag_mismatch("event"));
    }
    Ok(())
}

impl EventsApi {
    async fn create(&self, caller: &Caller, request: CreateEventRequest) -> Result<Event> {
        let sent = request.event.as_ref().ok_or_else(|| invalid("event", "is required"))?;
        let world_id = domain::id(&request.world_id).map_err(|e| invalid("world_id", e))?;
        let mut violations = FieldViolations::new();
        let request_id = violations
            .check(
                "request_id",
                domain::request_id(&request.request_id, &rules::story::create_event_request::REQUEST_ID),
            )
            .flatten();
        let target = CreateTarget { world_id, request_id };
        let (mut tx, id) = match children::begin_create::<Event>(&self.0.db, caller, &target).await? {
            Begun::New { tx, id } => (tx, id),
            Begun::Replay(first) => return self.get(caller, first).await,
        };
        let write = EventWrite::parse(sent, id, |_| true, &mut violations);
        violations.finish()?;
        write.check(&mut tx, world_id).await?;
        insert(&mut tx, id, world_id, &write.fields).await?;
        write.save(&mut tx, id).await?;
        revisions::record(&mut tx, caller, Write::of(RevisionKind::Create, ResourceKind::Event, id, None)).await?;
        commit(tx, id).await
    }

    async fn get(&self, caller: &Caller, id: Uuid) -> Result<Event> {
        let mut conn = self.0.db.reader.acquire().await?;
        children::locate::<Event>(&mut conn, caller, id).await?.require_read()?;
        let event: Event = children::fetch(&mut *conn, id).await?;
        complete_one(&mut conn, event).await
    }

    async fn list(&self, caller: &Caller, request: ListEventsRequest) -> Result<ListEventsResponse> {
        let world_id = domain::id(&request.world_id).map_err(|e| invalid("world_id", e))?;
        let page = Page::parse(
            request.page_size,
            &request.page_token,
            &LISTING,
            &["ListEvents", &request.world_id, &request.filter],
        )?;
        let mut condition = Sql::new(" WHERE t.world_id = ");
        condition.bind(Bind::Text(world_id.to_string()));
        filter::apply(&request.filter, &LISTING, &mut condition)?;

        let mut conn = self.0.db.reader.acquire().await?;
        world_access(&mut *conn, caller, world_id).await?.require_read()?;
        let count = Sql::select("SELECT COUNT(*) FROM events t", &condition);
        let total: i64 = count.query().fetch_one(&mut *conn).await?.try_get(0)?;
        let mut select = Sql::select(&format!("SELECT {} FROM events t", Event::COLUMNS), &condition);
        if let Some(after) = page.after_like(&sort_key(&Event::default()))? {
            select.push_after(ORDER, after);
        }
        select.push(" ORDER BY ").push(&ORDER.join(", ")).push(" LIMIT ").bind(Bind::Int(page.fetch_limit()));
        let rows = select.query().fetch_all(&mut *conn).await?;
        let events = rows.iter().map(Event::from_row).collect::<Result<Vec<_>>>()?;
        let (mut events, next_page_token) = page.finish(events, sort_key);
        complete(&mut conn, &Scope::of(&events), &mut events).await?;
        Ok(ListEventsResponse { events, next_page_token, total_size: i32::try_from(total).unwrap_or(i32::MAX) })
    }

    async fn update(&self, caller: &Caller, request: UpdateEventRequest) -> Result<Event> {
        let sent = request.event.ok_or_else(|| invalid("event", "is required"))?;
        let (id, mask) = update::target(&sent.id, "event.id", request.update_mask.as_ref(), UPDATABLE, |path| {
            populated(&sent, path)
        })?;
        let (mut tx, version) = children::begin_change::<Event>(&self.0.db, caller, id, &sent.etag).await?;
        if mask.is_empty() {
            return commit(tx, id).await;
        }
        let before = revisions::current(&mut tx, ResourceKind::Event, id).await?;
        let current: Event = children::fetch(&mut *tx, id).await?;
        let world_id =
            Uuid::try_parse(&current.world_id).map_err(|_| Error::Internal(format!("bad world id of event {id}")))?;
        let mut violations = FieldViolations::new();
        let write = EventWrite::parse(&merge(sent, current, &mask), id, |path| mask.has(path), &mut violations);
        violations.finish()?;
        write.check(&mut tx, world_id).await?;
        overwrite(&mut tx, id, version, &write.fields).await?;
        write.save(&mut tx, id).await?;
        revisions::record(&mut tx, caller, Write::of(RevisionKind::Update, ResourceKind::Event, id, before)).await?;
        commit(tx, id).await
    }

    async fn timeline(&self, caller: &Caller, world_id: Uuid) -> Result<Timeline> {
        let mut conn = self.0.db.reader.acquire().await?;
        world_access(&mut *conn, caller, world_id).await?.require_read()?;
        let mut sql = Sql::new(&format!("SELECT {} FROM events t WHERE t.world_id = ", Event::COLUMNS));
        sql.bind(Bind::Text(world_id.to_string())).push(" ORDER BY ").push(&ORDER.join(", "));
        let rows = sql.query().fetch_all(&mut *conn).await?;
        let mut events = rows.iter().map(Event::from_row).collect::<Result<Vec<_>>>()?;
        complete(&mut conn, &Scope::World(world_id), &mut events).await?;
        Ok(Timeline { eras: group_by_era(events) })
    }
}

#[tonic::async_trait]
impl EventService for EventsApi {
    async fn create_event(&self, request: Request<CreateEventRequest>) -> Result<Response<Event>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.create(&caller, request.into_inner()).await?))
    }

    async fn get_event(&self, request: Request<GetEventRequest>) -> Result<Response<Event>, Status> {
        let caller = caller(&request);
        let id = domain::id(&request.get_ref().id).map_err(|e| invalid("id", e))?;
        Ok(Response::new(self.get(&caller, id).await?))
    }

    async fn list_events(&self, request: Request<ListEventsRequest>) -> Result<Response<ListEventsResponse>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.list(&caller, request.into_inner()).await?))
    }

    async fn update_event(&self, request: Request<UpdateEventRequest>) -> Result<Response<Event>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.update(&caller, request.into_inner()).await?))
    }

    async fn delete_event(&self, request: Request<DeleteEventRequest>) -> Result<Response<()>, Status> {
        let caller = caller(&request);
        let request = request.get_ref();
        // Its links and the connections from and to it go with it (ON DELETE CASCADE).
        children::delete::<Event>(&self.0.db, &caller, &request.id, &request.etag).await?;
        Ok(Response::new(()))
    }

    async fn get_timeline(&self, request: Request<GetTimelineRequest>) -> Result<Response<Timeline>, Status> {
        let caller = caller(&request);
        let world_id = domain::id(&request.get_ref().world_id).map_err(|e| invalid("world_id", e))?;
        Ok(Response::new(self.timeline(&caller, world_id).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, era: &str) -> Event {
        Event { id: id.into(), era: era.into(), ..Event::default() }
    }

    #[test]
    fn the_timeline_groups_consecutive_events_of_an_era() {
        /// The eras of the events in order; the eras and sizes expected; why.
        type Case = (&'static [&'static str], &'static [(&'static str, usize)], &'static str);
        let cases: [Case; 6] = [
            (&[], &[], "no events, no eras"),
            (&["First Age"], &[("First Age", 1)], "one event"),
            (&["A", "A", "B"], &[("A", 2), ("B", 1)], "two runs"),
            (&["A", "B", "A"], &[("A", 1), ("B", 1), ("A", 1)], "an era that comes back is a new run"),
            (&["", "", "A"], &[("", 2), ("A", 1)], "events without an era share an unnamed one"),
            (&["Age of Sail", "age of sail ", "AGE OF SAIL"], &[("Age of Sail", 3)], "eras compare without case"),
        ];
        for (eras, expected, why) in cases {
            let events = eras.iter().enumerate().map(|(i, era)| event(&i.to_string(), era)).collect();
            let grouped = group_by_era(events);
            let shape: Vec<(&str, usize)> = grouped.iter().map(|e| (e.era.as_str(), e.events.len())).collect();
            assert_eq!(shape, expected, "{why}");
            let order: Vec<&str> = grouped.iter().flat_map(|e| e.events.iter().map(|ev| ev.id.as_str())).collect();
            let ids: Vec<String> = (0..eras.len()).map(|i| i.to_string()).collect();
            assert_eq!(order, ids, "{why}: the order is kept");
        }
    }

    #[test]
    fn connections_name_each_bad_one() {
        let me = Uuid::now_v7();
        let other = Uuid::now_v7().to_string();
        let link = |target: &str, relation: &str| EventConnection {
            target_event_id: target.into(),
            relation: relation.into(),
        };
        let cases: [(Vec<EventConnection>, &[&str], usize, &str); 5] = [
            (vec![link(&other, "causes"), link(&other, "")], &[], 2, "valid, repeated targets allowed"),
            (vec![link(&me.to_string(), "causes")], &["event.connections[0].target_event_id"], 0, "itself"),
            (vec![link(&other, "x"), link("nope", "x")], &["event.connections[1].target_event_id"], 1, "not an id"),
            (vec![link(&other, &"r".repeat(101))], &["event.connections[0].relation"], 0, "a long relation"),
            (
                (0..=declared::CONNECTIONS.max_items).map(|_| link(&other, "")).collect(),
                &["event.connections"],
                0,
                "too many",
            ),
        ];
        for (sent, fields, kept, why) in cases {
            let mut violations = FieldViolations::new();
            let parsed = connections(&sent, me, &mut violations);
            assert_eq!(parsed.len(), kept, "{why}");
            let message = violations.finish().err().map(|s| s.message().to_owned()).unwrap_or_default();
            assert_eq!(message.is_empty(), fields.is_empty(), "{why}: {message}");
            for field in fields {
                assert!(message.starts_with(field), "{why}: {message}");
            }
        }
    }

    #[test]
    fn story_ids_are_optional_but_valid() {
        assert_eq!(story_id(None), Ok(None));
        assert_eq!(story_id(Some("")), Ok(None));
        assert!(story_id(Some("nope")).is_err());
        let id = Uuid::now_v7();
        assert_eq!(story_id(Some(&id.to_string())), Ok(Some(id)));
    }

    #[test]
    fn an_update_takes_the_masked_fields_and_the_sent_lists() {
        let current = Event { title: "Old".into(), year: 12, story_id: Some("s".into()), ..Event::default() };
        let sent = Event { year: 40, story_id: None, entity_ids: vec!["e".into()], ..Event::default() };
        let mask = Mask::parse(
            Some(&prost_types::FieldMask { paths: vec!["year".into(), "story_id".into()] }),
            UPDATABLE,
            |_| false,
            &mut FieldViolations::new(),
        );
        let merged = merge(sent, current, &mask);
        assert_eq!((merged.title.as_str(), merged.year, merged.story_id), ("Old", 40, None));
        assert_eq!(merged.entity_ids, vec!["e".to_owned()]);
    }
}
