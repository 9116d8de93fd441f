//! Links from stories and events to the entities and locations of their world: the
//! four link tables (`story_entities`, `story_locations`, `event_entities`,
//! `event_locations`, each `(owner id, target_id, position)`) share this one code.
//!
//! - [`Links::parse`] and [`Links::check`]: the ids are valid, and name rows of the
//!   same world; an id of another world is INVALID_ARGUMENT naming the field
//!   (`story.entity_ids`: "… is not an entity of this world").
//! - [`Links::save`]: replaces a row's links in the caller's transaction, keeping
//!   their order in `position`.
//! - [`attach`], [`attach_one`]: fill the links of one row, a list page or a whole world with one
//!   query, so lists make no query per row.
//!
//! [`missing_in_world`], [`Scope`] and [`replace_rows`] also serve the other
//! same-world references of events: their story and their connections.

use std::collections::{HashMap, HashSet};

use fabula_runtime::errors::FieldViolations;
use sqlx::{Any, AnyConnection, Executor, Row, any::AnyRow};
use uuid::Uuid;

use fabula_runtime::rules::{self, Rule};
use fabula_store::{
    error::Result,
    pagination::{Bind, Sql},
};

use crate::domain;

/// A kind of row of a world that a request may name by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Entity,
    Location,
    Story,
    Event,
}

impl Target {
    fn table(self) -> &'static str {
        match self {
            Self::Entity => "entities",
            Self::Location => "locations",
            Self::Story => "stories",
            Self::Event => "events",
        }
    }

    /// Why `id` is refused: it names no such row of the world.
    pub fn not_in_world(self, id: Uuid) -> String {
        let noun = match self {
            Self::Entity => "an entity",
            Self::Location => "a location",
            Self::Story => "a story",
            Self::Event => "an event",
        };
        format!("{id} is not {noun} of this world")
    }
}

/// What links to entities and locations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Story,
    Event,
}

impl Owner {
    /// The owners' table.
    fn table(self) -> &'static str {
        Target::from(self).table()
    }

    /// The column naming the owner in its link tables.
    fn column(self) -> &'static str {
        match self {
            Self::Story => "story_id",
            Self::Event => "event_id",
        }
    }

    /// The message holding the links, the prefix of their field names.
    fn message(self) -> &'static str {
        match self {
            Self::Story => "story",
            Self::Event => "event",
        }
    }

    fn links(self) -> [Link; 2] {
        match self {
            Self::Story => [Link::StoryEntities, Link::StoryLocations],
            Self::Event => [Link::EventEntities, Link::EventLocations],
        }
    }
}

impl From<Owner> for Target {
    fn from(owner: Owner) -> Self {
        match owner {
            Owner::Story => Self::Story,
            Owner::Event => Self::Event,
        }
    }
}

/// One of the four link tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    StoryEntities,
    StoryLocations,
    EventEntities,
    EventLocations,
}

impl Link {
    fn table(self) -> &'static str {
        match self {
            Self::StoryEntities => "story_entities",
            Self::StoryLocations => "story_locations",
            Self::EventEntities => "event_entities",
            Self::EventLocations => "event_locations",
        }
    }

    fn owner(self) -> Owner {
        match self {
            Self::StoryEntities | Self::StoryLocations => Owner::Story,
            Self::EventEntities | Self::EventLocations => Owner::Event,
        }
    }

    fn target(self) -> Target {
        match self {
            Self::StoryEntities | Self::EventEntities => Target::Entity,
            Self::StoryLocations | Self::EventLocations => Target::Location,
        }
    }

    /// The declared rule of the field holding the ids.
    fn rule(self) -> &'static Rule {
        match self {
            Self::StoryEntities => &rules::story::story::ENTITY_IDS,
            Self::StoryLocations => &rules::story::story::LOCATION_IDS,
            Self::EventEntities => &rules::story::event::ENTITY_IDS,
            Self::EventLocations => &rules::story::event::LOCATION_IDS,
        }
    }

    /// The field of the owner's message holding the ids.
    fn field(self) -> &'static str {
        match self.target() {
            Target::Entity => "entity_ids",
            _ => "location_ids",
        }
    }
}

/// A message that links to entities and locations: a story or an event.
pub trait Linkable {
    const OWNER: Owner;

    fn id(&self) -> &str;

    /// The message's `entity_ids` (for [`Target::Entity`]) or `location_ids`.
    fn link_ids(&mut self, target: Target) -> &mut Vec<String>;
}

/// The links of a create or an update, validated, in the order sent. A list that
/// is not part of the write (not in the update mask) is `None` and stays as it is.
#[derive(Debug, PartialEq)]
pub struct Links {
    owner: Owner,
    entity_ids: Option<Vec<Uuid>>,
    location_ids: Option<Vec<Uuid>>,
}

impl Links {
    /// Parses the lists sent, filing problems under `story.entity_ids` and the like.
    pub fn parse(
        owner: Owner,
        entity_ids: Option<&[String]>,
        location_ids: Option<&[String]>,
        violations: &mut FieldViolations,
    ) -> Self {
        let [entities, locations] = owner.links();
        let mut parse = |link: Link, ids: &[String]| {
            domain::ids(&format!("{}.{}", owner.message(), link.field()), ids, link.rule(), violations)
        };
        Self {
            owner,
            entity_ids: entity_ids.map(|ids| parse(entities, ids).unwrap_or_default()),
            location_ids: location_ids.map(|ids| parse(locations, ids).unwrap_or_default()),
        }
    }

    fn ids(&self, link: Link) -> Option<&[Uuid]> {
        match link.target() {
            Target::Entity => self.entity_ids.as_deref(),
            _ => self.location_ids.as_deref(),
        }
    }

    /// NOT_FOUND naming each id that names no entity or location of world `world_id`.
    pub async fn check(&self, conn: &mut AnyConnection, world_id: Uuid) -> Result<()> {
        let mut missing = FieldViolations::new();
        self.check_into(conn, world_id, &mut missing).await?;
        Ok(missing.finish_missing()?)
    }

    /// Files each id that names no entity or location of world `world_id` in `missing`.
    pub async fn check_into(
        &self,
        conn: &mut AnyConnection,
        world_id: Uuid,
        missing: &mut FieldViolations,
    ) -> Result<()> {
        for link in self.owner.links() {
            let Some(ids) = self.ids(link) else { continue };
            let field = format!("{}.{}", self.owner.message(), link.field());
            for id in missing_in_world(&mut *conn, link.target(), world_id, ids).await? {
                let index = ids.iter().position(|sent| *sent == id).unwrap_or_default();
                missing.add(format!("{field}[{index}]"), link.target().not_in_world(id));
            }
        }
        Ok(())
    }

    /// Links the new row `id` to the lists of its create, and sets them on `item`:
    /// a new row has no links to replace, so an empty list costs no statement.
    pub async fn save_new<T: Linkable>(&self, conn: &mut AnyConnection, id: Uuid, item: &mut T) -> Result<()> {
        for link in self.owner.links() {
            let Some(ids) = self.ids(link).filter(|ids| !ids.is_empty()) else { continue };
            let rows: Vec<Vec<Bind>> = ids.iter().map(|target| vec![Bind::Text(target.to_string())]).collect();
            insert_rows(link.table(), link.owner().column(), id, &["target_id"], &rows)
                .query()
                .execute(&mut *conn)
                .await?;
            *item.link_ids(link.target()) = ids.iter().map(Uuid::to_string).collect();
        }
        Ok(())
    }

    /// Replaces the links of row `id` with the lists of this write, in their order.
    pub async fn save(&self, conn: &mut AnyConnection, id: Uuid) -> Result<()> {
        for link in self.owner.links() {
            let Some(ids) = self.ids(link) else { continue };
            let rows: Vec<Vec<Bind>> = ids.iter().map(|target| vec![Bind::Text(target.to_string())]).collect();
            replace_rows(&mut *conn, link.table(), link.owner().column(), id, &["target_id"], &rows).await?;
        }
        Ok(())
    }
}

/// The ids of `ids` that name no `target` row of world `world_id`, found in one query.
pub async fn missing_in_world<'e>(
    executor: impl Executor<'e, Database = Any>,
    target: Target,
    world_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Uuid>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(&format!("SELECT id FROM {} WHERE world_id = ", target.table()));
    sql.bind(Bind::Text(world_id.to_string())).push(" AND id IN (");
    push_list(&mut sql, ids.iter().map(|id| Bind::Text(id.to_string())));
    sql.push(")");
    let found = sql
        .query()
        .fetch_all(executor)
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>(0))
        .collect::<Result<HashSet<_>, _>>()?;
    Ok(ids.iter().filter(|id| !found.contains(&id.to_string())).copied().collect())
}

/// Files `field` for `id` unless it names a `target` row of world `world_id`.
pub async fn check_in_world<'e>(
    executor: impl Executor<'e, Database = Any>,
    target: Target,
    world_id: Uuid,
    id: Uuid,
    field: &str,
    violations: &mut FieldViolations,
) -> Result<()> {
    if !missing_in_world(executor, target, world_id, &[id]).await?.is_empty() {
        violations.add(field, target.not_in_world(id));
    }
    Ok(())
}

/// Replaces the rows of `table` owned by `owner_id` (in `owner_column`) with `rows`,
/// each one value per column of `columns`, numbered in order in `position`.
pub async fn replace_rows(
    conn: &mut AnyConnection,
    table: &'static str,
    owner_column: &'static str,
    owner_id: Uuid,
    columns: &[&'static str],
    rows: &[Vec<Bind>],
) -> Result<()> {
    let mut delete = Sql::new(&format!("DELETE FROM {table} WHERE {owner_column} = "));
    delete.bind(Bind::Text(owner_id.to_string()));
    delete.query().execute(&mut *conn).await?;
    if !rows.is_empty() {
        insert_rows(table, owner_column, owner_id, columns, rows).query().execute(&mut *conn).await?;
    }
    Ok(())
}

/// One `INSERT` of every row of `rows`, with the owner and the position first.
fn insert_rows(table: &str, owner_column: &str, owner_id: Uuid, columns: &[&str], rows: &[Vec<Bind>]) -> Sql {
    let mut sql = Sql::new(&format!("INSERT INTO {table} ({owner_column}, position, {}) VALUES ", columns.join(", ")));
    for (position, row) in rows.iter().enumerate() {
        sql.push(if position == 0 { "(" } else { ", (" });
        sql.bind(Bind::Text(owner_id.to_string())).push(", ").bind(Bind::Int(position as i64));
        for value in row {
            sql.push(", ").bind(value.clone());
        }
        sql.push(")");
    }
    sql
}

/// Appends `$1, $2, …` binding `values`.
fn push_list(sql: &mut Sql, values: impl IntoIterator<Item = Bind>) {
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(value);
    }
}

/// The owner rows whose links (or connections) to load.
#[derive(Clone, Debug, PartialEq)]
pub enum Scope {
    /// These rows: a list page, or one row.
    Rows(Vec<String>),
    /// Every row of the world.
    World(Uuid),
}

impl Scope {
    /// The rows of `items`.
    pub fn of<T: Linkable>(items: &[T]) -> Self {
        Self::Rows(items.iter().map(|item| item.id().to_owned()).collect())
    }

    /// Appends the condition that `column` names an `owner` row in scope.
    pub fn push_condition(&self, sql: &mut Sql, column: &str, owner: Owner) {
        match self {
            Self::Rows(ids) if ids.is_empty() => {
                sql.push("1 = 0");
            }
            Self::Rows(ids) => {
                sql.push(column).push(" IN (");
                push_list(sql, ids.iter().map(|id| Bind::Text(id.clone())));
                sql.push(")");
            }
            Self::World(world_id) => {
                sql.push(column).push(&format!(" IN (SELECT id FROM {} WHERE world_id = ", owner.table()));
                sql.bind(Bind::Text(world_id.to_string())).push(")");
            }
        }
    }
}

/// Fills the links of `items`, rows of `scope`, from one query over both link tables.
pub async fn attach<'e, T: Linkable>(
    executor: impl Executor<'e, Database = Any>,
    scope: &Scope,
    items: &mut [T],
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let rows = links_query(T::OWNER, scope).query().fetch_all(executor).await?;
    let mut found: HashMap<(String, String), Vec<String>> = HashMap::new();
    for row in &rows {
        let (table, owner_id, target_id): (String, String, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        found.entry((owner_id, table)).or_default().push(target_id);
    }
    for item in items {
        for link in T::OWNER.links() {
            let ids = found.remove(&(item.id().to_owned(), link.table().to_owned())).unwrap_or_default();
            *item.link_ids(link.target()) = ids;
        }
    }
    Ok(())
}

/// Columns (on an owner row aliased `t`) that carry its links as comma-separated ids
/// in order: entities, then locations. Read them back with [`fill_from_columns`].
/// `string_agg` is both PostgreSQL's and (since 3.44) SQLite's.
pub fn aggregated_columns(owner: Owner) -> String {
    owner
        .links()
        .map(|link| {
            format!(
                "(SELECT string_agg(l.target_id, ',' ORDER BY l.position) FROM {} l WHERE l.{} = t.id)",
                link.table(),
                owner.column()
            )
        })
        .join(", ")
}

/// Fills the links of `item` from the [`aggregated_columns`] read at index `first` of `row`.
pub fn fill_from_columns<T: Linkable>(item: &mut T, row: &AnyRow, first: usize) -> Result<()> {
    for (i, link) in T::OWNER.links().into_iter().enumerate() {
        let ids: Option<String> = row.try_get(first + i)?;
        *item.link_ids(link.target()) = ids.map(|ids| ids.split(',').map(str::to_owned).collect()).unwrap_or_default();
    }
    Ok(())
}

/// `item` with its links filled.
pub async fn attach_one<'e, T: Linkable>(executor: impl Executor<'e, Database = Any>, mut item: T) -> Result<T> {
    let scope = Scope::Rows(vec![item.id().to_owned()]);
    attach(executor, &scope, std::slice::from_mut(&mut item)).await?;
    Ok(item)
}

/// `(link table, owner id, target id, position)` of every link of the rows in
/// `scope`, in position order.
fn links_query(owner: Owner, scope: &Scope) -> Sql {
    let mut sql = Sql::new("");
    for (i, link) in owner.links().into_iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        let (table, column) = (link.table(), owner.column());
        sql.push(&format!("SELECT '{table}', l.{column}, l.target_id, l.position FROM {table} l WHERE "));
        scope.push_condition(&mut sql, &format!("l.{column}"), owner);
    }
    sql.push(" ORDER BY 4");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c";
    const B: &str = "0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7d";

    fn strings(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    #[test]
    fn parsing_files_bad_lists_under_the_owners_field() {
        let many: Vec<String> =
            (0..=rules::story::story::ENTITY_IDS.max_items).map(|_| Uuid::now_v7().to_string()).collect();
        /// The owner, its entity and location ids, the fields expected in error, why.
        type Case = (Owner, Vec<String>, Vec<String>, &'static [&'static str], &'static str);
        let cases: [Case; 5] = [
            (Owner::Story, strings(&[A, B]), strings(&[B]), &[], "valid ids"),
            (Owner::Story, strings(&["nope"]), vec![], &["story.entity_ids"], "not a uuid"),
            (Owner::Event, vec![], strings(&[A, A]), &["event.location_ids"], "a duplicate"),
            (Owner::Event, many, vec![], &["event.entity_ids"], "too many"),
            (Owner::Story, strings(&[""]), strings(&["x"]), &["story.entity_ids", "story.location_ids"], "both bad"),
        ];
        for (owner, entities, locations, fields, why) in cases {
            let mut violations = FieldViolations::new();
            Links::parse(owner, Some(&entities), Some(&locations), &mut violations);
            let status = violations.finish().err();
            let message = status.as_ref().map(|s| s.message().to_owned()).unwrap_or_default();
            assert_eq!(status.is_some(), !fields.is_empty(), "{why}: {message}");
            for field in fields {
                assert!(message.contains(field), "{why}: {message} does not name {field}");
            }
        }
    }

    #[test]
    fn lists_outside_the_write_are_left_alone() {
        let mut violations = FieldViolations::new();
        let links = Links::parse(Owner::Story, None, Some(&strings(&[A])), &mut violations);
        assert!(violations.is_empty());
        assert_eq!(links.ids(Link::StoryEntities), None);
        assert_eq!(links.ids(Link::StoryLocations), Some(&[Uuid::parse_str(A).unwrap()][..]));
    }

    #[test]
    fn rows_are_inserted_in_one_statement_with_their_positions() {
        let rows = vec![
            vec![Bind::Text("t1".into()), Bind::Text("r1".into())],
            vec![Bind::Text("t2".into()), Bind::Text("r2".into())],
        ];
        let sql = insert_rows("event_connections", "event_id", Uuid::nil(), &["target_event_id", "relation"], &rows);
        assert_eq!(
            sql.text(),
            "INSERT INTO event_connections (event_id, position, target_event_id, relation) \
             VALUES ($1, $2, $3, $4), ($5, $6, $7, $8)"
        );
    }

    #[test]
    fn scopes_select_rows_or_a_world() {
        let cases = [
            (Scope::Rows(vec![]), "1 = 0"),
            (Scope::Rows(strings(&[A, B])), "c.event_id IN ($1, $2)"),
            (Scope::World(Uuid::nil()), "c.event_id IN (SELECT id FROM events WHERE world_id = $1)"),
        ];
        for (scope, condition) in cases {
            let mut sql = Sql::new("");
            scope.push_condition(&mut sql, "c.event_id", Owner::Event);
            assert_eq!(sql.text(), condition, "{scope:?}");
        }
    }

    #[test]
    fn both_link_tables_load_in_one_query() {
        let sql = links_query(Owner::Story, &Scope::Rows(strings(&[A])));
        assert_eq!(
            sql.text(),
            "SELECT 'story_entities', l.story_id, l.target_id, l.position FROM story_entities l \
             WHERE l.story_id IN ($1) UNION ALL \
             SELECT 'story_locations', l.story_id, l.target_id, l.position FROM story_locations l \
             WHERE l.story_id IN ($2) ORDER BY 4"
        );
    }
}
