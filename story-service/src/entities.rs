//! EntityService: the characters, factions, items and other things of a world.
//!
//! `entity_type` is free text of at most 50 characters; an empty one means
//! `character`, the most common kind, so every stored entity has a type to filter
//! on. `attributes` are stored as a JSON object of strings. Deleting an entity
//! removes it from the stories and events that link it (ON DELETE CASCADE on
//! `story_entities` and `event_entities`).

use fabula_runtime::rules::Checks;
use std::collections::{BTreeMap, HashMap};

use fabula_contracts::pb::story::{
    CreateEntityRequest, DeleteEntityRequest, Entity, GetEntityRequest, ListEntitiesRequest, ListEntitiesResponse,
    ResourceKind, RevisionKind, UpdateEntityRequest, entity_service_server::EntityService, snapshot::Resource,
};
use fabula_runtime::{
    auth::{Caller, caller},
    errors::{FieldViolations, quote},
    rules::{self, story::entity as declared},
};
use fabula_store::{
    db::now_micros,
    error::{Error, Result, invalid},
    pagination::Listing,
};
use sqlx::{Row, any::AnyRow};
use tonic::{Request, Response, Status};

use crate::{
    State,
    children::{self, Begun, CreateTarget, ListRequest, Stamps, WorldChild},
    domain,
    revisions::Write,
    update::{self, Mask},
};

/// The type of an entity created or updated with an empty one.
const DEFAULT_TYPE: &str = "character";

const UPDATABLE: &[&str] = rules::story::update_entity_request::UPDATE_MASK.paths;
const LISTING: Listing = Listing {
    page_size: &rules::story::list_entities_request::PAGE_SIZE,
    page_token: &rules::story::list_entities_request::PAGE_TOKEN,
    filter: &rules::story::list_entities_request::FILTER,
    columns: &[("entity_type", "t.entity_type"), ("name", "t.name")],
};

pub struct EntitiesApi(pub State);

impl WorldChild for Entity {
    const TABLE: &'static str = "entities";
    const NOUN: &'static str = "entity";
    const KIND: ResourceKind = ResourceKind::Entity;
    const COLUMNS: &'static str = "t.id, t.world_id, t.name, t.entity_type, t.description, t.attributes, \
                                   t.version, t.create_time, t.update_time";

    fn from_row(row: &AnyRow) -> Result<Self> {
        let id: String = row.try_get(0)?;
        let attributes: String = row.try_get(5)?;
        let attributes = serde_json::from_str::<HashMap<String, String>>(&attributes)
            .map_err(|e| Error::Internal(format!("bad attributes of entity {id}: {e}")))?;
        let Stamps { etag, create_time, update_time } = Stamps::read(row, 6)?;
        Ok(Entity {
            world_id: row.try_get(1)?,
            name: row.try_get(2)?,
            entity_type: row.try_get(3)?,
            description: row.try_get(4)?,
            attributes,
            etag,
            create_time,
            update_time,
            id,
        })
    }

    fn id(&self) -> &str {
        &self.id
    }
}

/// The fields of an entity a caller may set, validated.
#[derive(Debug, Default, PartialEq)]
struct EntityFields {
    name: String,
    entity_type: String,
    description: String,
    /// Sorted, so the stored JSON is stable.
    attributes: BTreeMap<String, String>,
}

impl EntityFields {
    /// Validates every field of `entity`, filing each problem under `entity.<field>`.
    fn check(entity: &Entity, violations: &mut FieldViolations) -> Self {
        Self {
            name: violations.check("entity.name", rules::text(&entity.name, &declared::NAME)).unwrap_or_default(),
            entity_type: violations.check("entity.entity_type", entity_type(&entity.entity_type)).unwrap_or_default(),
            description: violations
                .check("entity.description", rules::text(&entity.description, &declared::DESCRIPTION))
                .unwrap_or_default(),
            attributes: attributes(&entity.attributes, "entity.attributes", violations),
        }
    }

    /// Validates every field of `entity`, reporting all problems at once.
    fn parse(entity: &Entity) -> Result<Self> {
        let mut violations = FieldViolations::new();
        let fields = Self::check(entity, &mut violations);
        violations.finish()?;
        Ok(fields)
    }

    /// The attributes as stored: a JSON object.
    fn attributes_json(&self) -> Result<String> {
        serde_json::to_string(&self.attributes).map_err(|e| Error::Internal(format!("attributes to JSON: {e}")))
    }
}

/// A label, trimmed; empty means [`DEFAULT_TYPE`].
pub(crate) fn entity_type(value: &str) -> Result<String, String> {
    let value = rules::text(value, &declared::ENTITY_TYPE)?;
    Ok(if value.is_empty() { DEFAULT_TYPE.to_owned() } else { value })
}

/// Attributes as declared (so many at most, each key a name and each value a text of
/// its length), both kept as written. Problems are filed under `field` (too many, a
/// bad key) or `field["key"]` (a bad value), in key order.
pub(crate) fn attributes(
    attributes: &HashMap<String, String>,
    field: &str,
    violations: &mut FieldViolations,
) -> BTreeMap<String, String> {
    let sorted: BTreeMap<String, String> = attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let rule = &declared::ATTRIBUTES;
    if let Err(problem) = rule.check_count(sorted.len()) {
        violations.add(field, problem);
    }
    for (key, value) in &sorted {
        if let Err(problem) = rule.check_key(key) {
            violations.add(field, problem);
        } else if let Err(problem) = rules::text(value, rule) {
            violations.add(format!("{field}[{}]", quote(key)), problem);
        }
    }
    sorted
}

/// Whether `path` of `entity` was sent, for an update without a mask.
fn populated(entity: &Entity, path: &str) -> bool {
    match path {
        "name" => !entity.name.is_empty(),
        "entity_type" => !entity.entity_type.is_empty(),
        "description" => !entity.description.is_empty(),
        "attributes" => !entity.attributes.is_empty(),
        _ => false,
    }
}

/// `current` with the fields of `mask` taken from `sent`.
fn merge(sent: Entity, current: Entity, mask: &Mask) -> Entity {
    Entity {
        name: if mask.has("name") { sent.name } else { current.name },
        entity_type: if mask.has("entity_type") { sent.entity_type } else { current.entity_type },
        description: if mask.has("description") { sent.description } else { current.description },
        attributes: if mask.has("attributes") { sent.attributes } else { current.attributes },
        ..current
    }
}

impl EntitiesApi {
    async fn create(&self, caller: Caller, request: CreateEntityRequest) -> Result<Entity> {
        let mut violations = FieldViolations::new();
        let target = CreateTarget::parse(
            &request.world_id,
            &request.request_id,
            &rules::story::create_entity_request::REQUEST_ID,
            &mut violations,
        );
        let fields = match &request.entity {
            Some(entity) => EntityFields::check(entity, &mut violations),
            None => {
                violations.add("entity", "is required");
                EntityFields::default()
            }
        };
        violations.finish()?;
        let (mut tx, id) = match children::begin_create::<Entity>(&self.0.db, &caller, &target).await? {
            Begun::New { tx, id } => (tx, id),
            Begun::Replay(first) => return children::get(&self.0.db, &caller, first).await,
        };
        let inserted = sqlx::query(
            "INSERT INTO entities (id, world_id, name, entity_type, description, attributes, version, \
             create_time, update_time) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
        )
        .bind(id.to_string())
        .bind(target.world_id.to_string())
        .bind(&fields.name)
        .bind(&fields.entity_type)
        .bind(&fields.description)
        .bind(fields.attributes_json()?)
        .bind(now_micros())
        .execute(&mut *tx)
        .await?;
        let write = Write::of(RevisionKind::Create, ResourceKind::Entity, id, None);
        children::finish(tx, &caller, write, inserted.rows_affected()).await
    }

    async fn update(&self, caller: Caller, request: UpdateEntityRequest) -> Result<Entity> {
        let sent = request.entity.ok_or_else(|| invalid("entity", "is required"))?;
        let (id, mask) = update::target(&sent.id, "entity.id", request.update_mask.as_ref(), UPDATABLE, |path| {
            populated(&sent, path)
        })?;
        let (mut tx, version) = children::begin_change::<Entity>(&self.0.db, &caller, id, &sent.etag).await?;
        let current: Entity = children::fetch(&mut *tx, id).await?;
        if mask.is_empty() {
            return Ok(current);
        }
        let write = Write::of(RevisionKind::Update, ResourceKind::Entity, id, Some(Resource::Entity(current.clone())));
        let fields = EntityFields::parse(&merge(sent, current, &mask))?;
        let updated = sqlx::query(
            "UPDATE entities SET name = $1, entity_type = $2, description = $3, attributes = $4, \
             version = version + 1, update_time = $5 WHERE id = $6 AND version = $7",
        )
        .bind(&fields.name)
        .bind(&fields.entity_type)
        .bind(&fields.description)
        .bind(fields.attributes_json()?)
        .bind(now_micros())
        .bind(id.to_string())
        .bind(version)
        .execute(&mut *tx)
        .await?;
        children::finish(tx, &caller, write, updated.rows_affected()).await
    }
}

#[tonic::async_trait]
impl EntityService for EntitiesApi {
    async fn create_entity(&self, request: Request<CreateEntityRequest>) -> Result<Response<Entity>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.create(caller, request.into_inner()).await?))
    }

    async fn get_entity(&self, request: Request<GetEntityRequest>) -> Result<Response<Entity>, Status> {
        let caller = caller(&request);
        let id = domain::id(&request.get_ref().id).map_err(|e| invalid("id", e))?;
        Ok(Response::new(children::get(&self.0.db, &caller, id).await?))
    }

    async fn list_entities(
        &self,
        request: Request<ListEntitiesRequest>,
    ) -> Result<Response<ListEntitiesResponse>, Status> {
        let caller = caller(&request);
        let request = request.get_ref();
        let list = ListRequest {
            method: "ListEntities",
            world_id: &request.world_id,
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
        };
        let page = children::list::<Entity>(&self.0.db, &caller, list, &LISTING).await?;
        Ok(Response::new(ListEntitiesResponse {
            entities: page.items,
            next_page_token: page.next_page_token,
            total_size: page.total_size,
        }))
    }

    async fn update_entity(&self, request: Request<UpdateEntityRequest>) -> Result<Response<Entity>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.update(caller, request.into_inner()).await?))
    }

    async fn delete_entity(&self, request: Request<DeleteEntityRequest>) -> Result<Response<()>, Status> {
        let caller = caller(&request);
        let request = request.get_ref();
        children::delete::<Entity>(&self.0.db, &caller, &request.id, &request.etag).await?;
        Ok(Response::new(()))
    }
}

#[cfg(test)]
mod tests {
    use prost_types::FieldMask;
    use tonic::Code;

    use super::*;
    use crate::children::testing::{self, by, code, violated};

    fn entity(name: &str) -> Entity {
        Entity { name: name.into(), ..Entity::default() }
    }

    fn with_attributes(pairs: impl IntoIterator<Item = (String, String)>) -> Entity {
        Entity { attributes: pairs.into_iter().collect(), ..entity("Arwen") }
    }

    #[test]
    fn bad_entities_name_every_bad_field() {
        let long = |n: usize| "x".repeat(n);
        let cases: Vec<(Entity, Vec<&str>, &str)> = vec![
            (entity(""), vec!["entity.name"], "a name is required"),
            (entity("   "), vec!["entity.name"], "a blank name is no name"),
            (entity(&long(201)), vec!["entity.name"], "names have at most 200 characters"),
            (Entity { entity_type: long(51), ..entity("A") }, vec!["entity.entity_type"], "types have at most 50"),
            (Entity { description: long(10_001), ..entity("A") }, vec!["entity.description"], "descriptions ≤ 10 000"),
            (
                with_attributes((0..51).map(|i| (format!("k{i}"), String::new()))),
                vec!["entity.attributes"],
                "at most 50 attributes",
            ),
            (with_attributes([(String::new(), "v".into())]), vec!["entity.attributes"], "keys are not empty"),
            (with_attributes([("  ".into(), "v".into())]), vec!["entity.attributes"], "keys are not blank"),
            (with_attributes([(long(101), "v".into())]), vec!["entity.attributes"], "keys have at most 100"),
            (with_attributes([("age".into(), long(1_001))]), vec![r#"entity.attributes["age"]"#], "values ≤ 1 000"),
            (
                Entity { entity_type: long(51), ..entity("") },
                vec!["entity.name", "entity.entity_type"],
                "every problem is reported at once",
            ),
        ];
        for (bad, fields, why) in cases {
            assert_eq!(violated(EntityFields::parse(&bad)), fields, "{why}");
        }
    }

    #[test]
    fn good_entities_are_trimmed_and_typed() {
        let fields = EntityFields::parse(&entity("  Arwen ")).unwrap();
        assert_eq!((fields.name.as_str(), fields.entity_type.as_str()), ("Arwen", "character"));
        let faction = EntityFields::parse(&Entity { entity_type: " faction ".into(), ..entity("A") }).unwrap();
        assert_eq!(faction.entity_type, "faction");
        let full = with_attributes((0..50).map(|i| (format!("{i:0>100}"), "é".repeat(1_000))));
        assert_eq!(EntityFields::parse(&full).unwrap().attributes.len(), 50, "the limits themselves are allowed");
    }

    #[tokio::test]
    async fn entities_round_trip_under_access_rules() {
        let world = testing::world().await;
        let api = EntitiesApi(world.state.clone());
        let create = |request_id: &str, name: &str, entity_type: &str| CreateEntityRequest {
            world_id: world.world_id.to_string(),
            entity: Some(Entity {
                entity_type: entity_type.into(),
                attributes: [("age".to_owned(), "2901".to_owned())].into(),
                ..entity(name)
            }),
            request_id: request_id.into(),
        };
        let arwen = api.create_entity(by(world.owner, create("r1", "Arwen", ""))).await.unwrap().into_inner();
        let again = api.create_entity(by(world.owner, create("r1", "Other", ""))).await.unwrap().into_inner();
        assert_eq!(again, arwen, "a retried create returns the first entity");
        assert_eq!(arwen.attributes["age"], "2901");
        api.create_entity(by(world.owner, create("", "Rivendell Guard", "faction"))).await.unwrap();

        let get = |id: &str| GetEntityRequest { id: id.into() };
        assert_eq!(api.get_entity(by(world.reader, get(&arwen.id))).await.unwrap().into_inner(), arwen);
        assert_eq!(code(api.get_entity(by(world.stranger, get(&arwen.id))).await), Code::NotFound);
        assert_eq!(code(api.create_entity(by(world.reader, create("", "X", ""))).await), Code::PermissionDenied);
        assert_eq!(code(api.create_entity(by(world.stranger, create("", "X", ""))).await), Code::NotFound);

        let list = |filter: &str, page_token: &str| ListEntitiesRequest {
            world_id: world.world_id.to_string(),
            page_size: 1,
            page_token: page_token.into(),
            filter: filter.into(),
        };
        let first = api.list_entities(by(world.reader, list("", ""))).await.unwrap().into_inner();
        assert_eq!((first.entities.len(), first.total_size), (1, 2));
        let second = api.list_entities(by(world.reader, list("", &first.next_page_token))).await.unwrap().into_inner();
        assert_eq!((second.entities[0].name.as_str(), second.next_page_token.as_str()), ("Rivendell Guard", ""));
        let characters =
            api.list_entities(by(world.reader, list("entity_type = character", ""))).await.unwrap().into_inner();
        assert_eq!((characters.total_size, characters.entities[0].id.as_str()), (1, arwen.id.as_str()));
        assert_eq!(code(api.list_entities(by(world.stranger, list("", ""))).await), Code::NotFound);
        let world_id = world.world_id.to_string();
        let forged = fabula_store::pagination::Page::parse(1, "", &LISTING, &["ListEntities", &world_id, ""])
            .unwrap()
            .next_token(vec![]);
        assert_eq!(code(api.list_entities(by(world.reader, list("", &forged))).await), Code::InvalidArgument);

        let update = |etag: &str, paths: &[&str]| UpdateEntityRequest {
            entity: Some(Entity { id: arwen.id.clone(), etag: etag.into(), ..entity("Undómiel") }),
            update_mask: Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
        };
        assert_eq!(code(api.update_entity(by(world.reader, update("", &["name"]))).await), Code::PermissionDenied);
        let renamed = api
            .update_entity(by(world.owner, update(&arwen.etag, &["name", "attributes"])))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((renamed.name.as_str(), renamed.attributes.len()), ("Undómiel", 0), "a masked empty map clears");
        assert_eq!(renamed.entity_type, "character");
        assert_ne!(renamed.etag, arwen.etag);
        assert_eq!(code(api.update_entity(by(world.owner, update(&arwen.etag, &["name"]))).await), Code::Aborted);

        let story_id = uuid::Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO stories (id, world_id, owner_id, title, content, format, genre, visibility, sort_order, \
             create_time, update_time) VALUES ($1, $2, $3, 'S', '', 'PLAIN', '', 'DRAFT', 1, 0, 0)",
        )
        .bind(&story_id)
        .bind(world.world_id.to_string())
        .bind(world.owner.user_id().unwrap().to_string())
        .execute(&world.state.db.writer)
        .await
        .unwrap();
        sqlx::query("INSERT INTO story_entities (story_id, target_id, position) VALUES ($1, $2, 0)")
            .bind(&story_id)
            .bind(&arwen.id)
            .execute(&world.state.db.writer)
            .await
            .unwrap();
        let delete = |etag: &str| DeleteEntityRequest { id: arwen.id.clone(), etag: etag.into() };
        assert_eq!(code(api.delete_entity(by(world.stranger, delete(""))).await), Code::NotFound);
        assert_eq!(code(api.delete_entity(by(world.owner, delete(&arwen.etag))).await), Code::Aborted);
        api.delete_entity(by(world.owner, delete(&renamed.etag))).await.unwrap();
        assert_eq!(code(api.get_entity(by(world.owner, get(&arwen.id))).await), Code::NotFound);
        let links: i64 = sqlx::query("SELECT COUNT(*) FROM story_entities")
            .fetch_one(&world.state.db.reader)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(links, 0, "the story's link went with the entity");
    }
}
