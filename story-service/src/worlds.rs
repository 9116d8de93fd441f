//! WorldService: worlds, their visibility and their sharing.

use fabula_contracts::pb::story::{
    CreateWorldRequest, DeleteWorldRequest, GetWorldRequest, ListWorldSharesRequest, ListWorldSharesResponse,
    ListWorldsRequest, ListWorldsResponse, ResourceKind, RevisionKind, ShareRole, ShareWorldRequest,
    UnshareWorldRequest, UpdateWorldRequest, Visibility, World, WorldShare, WorldType, snapshot::Resource,
    world_service_server::WorldService,
};
use fabula_runtime::{
    auth::{Caller, caller},
    errors::FieldViolations,
    rules::{self, story::world as declared},
};
use fabula_store::{
    db::{now_micros, timestamp},
    error::{Error, Result, invalid, not_found},
    filter,
    pagination::{Bind, Key, Listing, Page, Sql},
};
use sqlx::{Any, Executor, Row, any::AnyRow};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    State,
    access::{push_readable_worlds, world_access},
    domain,
    idempotency::{self, Claim},
    quotas::{self, Public},
    revisions::{self, Write},
    update::{self, check_etag, etag},
};

const COLUMNS: &str =
    "w.id, w.owner_id, w.name, w.description, w.world_type, w.visibility, w.version, w.create_time, w.update_time";
const UPDATABLE: &[&str] = rules::story::update_world_request::UPDATE_MASK.paths;
const LISTING: Listing = Listing {
    page_size: &rules::story::list_worlds_request::PAGE_SIZE,
    page_token: &rules::story::list_worlds_request::PAGE_TOKEN,
    filter: &rules::story::list_worlds_request::FILTER,
    columns: &[("visibility", "w.visibility"), ("world_type", "w.world_type"), ("owner_id", "w.owner_id")],
};

pub struct WorldsApi(pub State);

/// The fields of a world a caller may set, validated.
struct WorldFields {
    name: String,
    description: String,
    world_type: WorldType,
    visibility: Visibility,
}

impl WorldFields {
    /// Validates every field of `world`, filing each problem in `violations`.
    fn check(world: &World, prefix: &str, violations: &mut FieldViolations) -> Self {
        let name = violations.check(&format!("{prefix}name"), rules::text(&world.name, &declared::NAME));
        let description =
            violations.check(&format!("{prefix}description"), rules::text(&world.description, &declared::DESCRIPTION));
        let world_type =
            violations.check(&format!("{prefix}world_type"), domain::enumeration(world.world_type, WorldType::Other));
        let visibility =
            violations.check(&format!("{prefix}visibility"), domain::enumeration(world.visibility, Visibility::Draft));
        Self {
            name: name.unwrap_or_default(),
            description: description.unwrap_or_default(),
            world_type: world_type.unwrap_or(WorldType::Other),
            visibility: visibility.unwrap_or(Visibility::Draft),
        }
    }

    /// [`Self::check`] alone: INVALID_ARGUMENT naming every bad field.
    fn parse(world: &World, prefix: &str) -> Result<Self> {
        let mut violations = FieldViolations::new();
        let fields = Self::check(world, prefix, &mut violations);
        violations.finish()?;
        Ok(fields)
    }
}

fn world_from_row(row: &AnyRow) -> Result<World> {
    Ok(World {
        id: row.try_get(0)?,
        owner_id: row.try_get(1)?,
        name: row.try_get(2)?,
        description: row.try_get(3)?,
        world_type: WorldType::from_str_name(&row.try_get::<String, _>(4)?).unwrap_or(WorldType::Other).into(),
        visibility: Visibility::from_str_name(&row.try_get::<String, _>(5)?).unwrap_or(Visibility::Draft).into(),
        etag: etag(row.try_get(6)?),
        create_time: Some(timestamp(row.try_get(7)?)),
        update_time: Some(timestamp(row.try_get(8)?)),
    })
}

/// Reads world `id` as stored, with no access check.
async fn fetch_world<'e>(executor: impl Executor<'e, Database = Any>, id: Uuid) -> Result<World> {
    find_world(executor, id).await?.ok_or_else(|| not_found("world"))
}

/// World `id` as stored, if there is one, with no access check.
pub(crate) async fn find_world<'e>(executor: impl Executor<'e, Database = Any>, id: Uuid) -> Result<Option<World>> {
    let sql = format!("SELECT {COLUMNS} FROM worlds w WHERE w.id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_string()).fetch_optional(executor).await?;
    row.as_ref().map(world_from_row).transpose()
}

impl WorldsApi {
    async fn create(&self, caller: Caller, request: CreateWorldRequest) -> Result<World> {
        let owner = *caller.require_user()?;
        let world = request.world.ok_or_else(|| invalid("world", "is required"))?;
        let mut violations = FieldViolations::new();
        let fields = WorldFields::check(&world, "world.", &mut violations);
        let request_id = violations
            .check(
                "request_id",
                domain::request_id(&request.request_id, &rules::story::create_world_request::REQUEST_ID),
            )
            .flatten();
        violations.finish()?;
        let id = Uuid::now_v7();
        let mut tx = self.0.db.begin().await?;
        if let Claim::Replay(first) =
            idempotency::claim(&mut tx, owner.user_id, request_id.as_deref(), "world", id).await?
        {
            drop(tx);
            return self.get(caller, first).await;
        }
        if fields.visibility == Visibility::Public {
            quotas::check_public(&mut tx, &self.0.settings.quotas, &owner, Public::Worlds, id).await?;
        }
        let now = now_micros();
        sqlx::query(
            "INSERT INTO worlds (id, owner_id, name, description, world_type, visibility, version, create_time, update_time) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
        )
        .bind(id.to_string())
        .bind(owner.user_id.to_string())
        .bind(&fields.name)
        .bind(&fields.description)
        .bind(fields.world_type.as_str_name())
        .bind(fields.visibility.as_str_name())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        revisions::record(&mut tx, &caller, Write::of(RevisionKind::Create, ResourceKind::World, id, None)).await?;
        let created = fetch_world(&mut *tx, id).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn get(&self, caller: Caller, id: Uuid) -> Result<World> {
        world_access(&self.0.db.reader, &caller, id).await?.require_read()?;
        fetch_world(&self.0.db.reader, id).await
    }

    async fn list(&self, caller: Caller, request: ListWorldsRequest) -> Result<ListWorldsResponse> {
        let page = Page::parse(request.page_size, &request.page_token, &LISTING, &["ListWorlds", &request.filter])?;
        let mut condition = Sql::new(" WHERE ");
        push_readable_worlds(&caller, &mut condition);
        filter::apply(&request.filter, &LISTING, &mut condition)?;
        let count = Sql::select("SELECT COUNT(*) FROM worlds w", &condition);
        let mut select = Sql::select(&format!("SELECT {COLUMNS} FROM worlds w"), &condition);
        if let Some(after) = page.after_like(&[Key::Text(String::new())])? {
            select.push_after(&["w.id"], after);
        }
        select.push(" ORDER BY w.id LIMIT ").bind(Bind::Int(page.fetch_limit()));

        let total: i64 = count.query().fetch_one(&self.0.db.reader).await?.try_get(0)?;
        let rows = select.query().fetch_all(&self.0.db.reader).await?;
        let worlds = rows.iter().map(world_from_row).collect::<Result<Vec<_>>>()?;
        let (worlds, next_page_token) = page.finish(worlds, |w| vec![Key::Text(w.id.clone())]);
        Ok(ListWorldsResponse { worlds, next_page_token, total_size: total as i32 })
    }
}

impl WorldsApi {
    async fn update(&self, caller: Caller, request: UpdateWorldRequest) -> Result<World> {
        caller.require_user()?;
        let world = request.world.ok_or_else(|| invalid("world", "is required"))?;
        let (id, mask) =
            update::target(&world.id, "world.id", request.update_mask.as_ref(), UPDATABLE, |path| match path {
                "name" => !world.name.is_empty(),
                "description" => !world.description.is_empty(),
                "world_type" => world.world_type != 0,
                "visibility" => world.visibility != 0,
                _ => false,
            })?;
        let mut tx = self.0.db.begin().await?;
        let access = world_access(&mut *tx, &caller, id).await?;
        access.require_owner()?;
        let current = fetch_world(&mut *tx, id).await?;
        let version: i64 = current.etag.trim_matches('"').parse().unwrap_or_default();
        check_etag(&world.etag, version, "world")?;
        let was_public = current.visibility == Visibility::Public as i32;
        let before = Resource::World(current.clone());
        let merged = World {
            name: if mask.has("name") { world.name } else { current.name },
            description: if mask.has("description") { world.description } else { current.description },
            world_type: if mask.has("world_type") { world.world_type } else { current.world_type },
            visibility: if mask.has("visibility") { world.visibility } else { current.visibility },
            ..World::default()
        };
        let fields = WorldFields::parse(&merged, "world.")?;
        if fields.visibility == Visibility::Public && !was_public {
            let owner = quotas::owner(&mut tx, access.owner_id).await?;
            quotas::check_public(&mut tx, &self.0.settings.quotas, &owner, Public::Worlds, id).await?;
        }
        let updated = sqlx::query(
            "UPDATE worlds SET name = $1, description = $2, world_type = $3, visibility = $4, \
             version = version + 1, update_time = $5 WHERE id = $6 AND version = $7",
        )
        .bind(&fields.name)
        .bind(&fields.description)
        .bind(fields.world_type.as_str_name())
        .bind(fields.visibility.as_str_name())
        .bind(now_micros())
        .bind(id.to_string())
        .bind(version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(fabula_store::error::etag_mismatch("world"));
        }
        revisions::record(&mut tx, &caller, Write::of(RevisionKind::Update, ResourceKind::World, id, Some(before)))
            .await?;
        let world = fetch_world(&mut *tx, id).await?;
        tx.commit().await?;
        Ok(world)
    }

    async fn delete(&self, caller: Caller, request: DeleteWorldRequest) -> Result<()> {
        caller.require_user()?;
        let id = domain::id(&request.id).map_err(|e| invalid("id", e))?;
        let mut tx = self.0.db.begin().await?;
        world_access(&mut *tx, &caller, id).await?.require_owner()?;
        let version: i64 = sqlx::query("SELECT version FROM worlds WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        check_etag(&request.etag, version, "world")?;
        // Stories, entities, locations, events, links and shares go with it (ON DELETE CASCADE),
        // and so does the history of all of them: a deleted world cannot be restored.
        sqlx::query("DELETE FROM worlds WHERE id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM revisions WHERE world_id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn share(&self, caller: Caller, request: ShareWorldRequest) -> Result<WorldShare> {
        caller.require_user()?;
        let mut violations = FieldViolations::new();
        let world_id = violations.check("world_id", domain::id(&request.world_id));
        let role = violations.check("role", share_role(request.role));
        violations.check("user", rules::text(&request.user, &rules::story::share_world_request::USER));
        violations.finish()?;
        let (world_id, role) = (world_id.unwrap_or_default(), role.unwrap_or(ShareRole::Reader));

        let mut tx = self.0.db.begin().await?;
        let access = world_access(&mut *tx, &caller, world_id).await?;
        access.require_owner()?;
        let (user_id, username) = find_user(&mut tx, &request.user).await?;
        if user_id == access.owner_id {
            return Err(invalid("user", "is the world's owner already"));
        }
        let share = grant_share(&mut tx, world_id, (user_id, username), role).await?;
        tx.commit().await?;
        Ok(share)
    }

    async fn unshare(&self, caller: Caller, request: UnshareWorldRequest) -> Result<()> {
        caller.require_user()?;
        let mut violations = FieldViolations::new();
        let world_id = violations.check("world_id", domain::id(&request.world_id));
        let user_id = violations.check("user_id", domain::id(&request.user_id));
        violations.finish()?;
        let (world_id, user_id) = (world_id.unwrap_or_default(), user_id.unwrap_or_default());
        let mut tx = self.0.db.begin().await?;
        world_access(&mut *tx, &caller, world_id).await?.require_owner()?;
        let removed = sqlx::query("DELETE FROM world_shares WHERE world_id = $1 AND user_id = $2")
            .bind(world_id.to_string())
            .bind(user_id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(not_found("share"));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_shares(&self, caller: Caller, request: ListWorldSharesRequest) -> Result<ListWorldSharesResponse> {
        let world_id = domain::id(&request.world_id).map_err(|e| invalid("world_id", e))?;
        let access = world_access(&self.0.db.reader, &caller, world_id).await?;
        access.require_read()?;
        if !access.reads_everything() {
            return Err(fabula_store::error::denied(
                "only the world's owner and the users it is shared with see its shares",
            ));
        }
        let rows = sqlx::query(
            "SELECT s.user_id, u.username, s.role, s.create_time FROM world_shares s \
             JOIN users u ON u.id = s.user_id WHERE s.world_id = $1 ORDER BY s.create_time, s.user_id",
        )
        .bind(world_id.to_string())
        .fetch_all(&self.0.db.reader)
        .await?;
        let shares = rows
            .iter()
            .map(|row| {
                Ok(WorldShare {
                    world_id: world_id.to_string(),
                    user_id: row.try_get(0)?,
                    username: row.try_get(1)?,
                    role: ShareRole::from_str_name(&row.try_get::<String, _>(2)?).unwrap_or(ShareRole::Reader).into(),
                    create_time: Some(timestamp(row.try_get(3)?)),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ListWorldSharesResponse { shares })
    }
}

/// A role to share a world with: READER or CO_AUTHOR.
pub(crate) fn share_role(value: i32) -> Result<ShareRole, String> {
    match ShareRole::try_from(value) {
        Ok(role @ (ShareRole::Reader | ShareRole::CoAuthor)) => Ok(role),
        _ => Err("must be READER or CO_AUTHOR".into()),
    }
}

/// Gives user `(id, username)` `role` on world `world_id`, or changes the role they
/// have: ShareWorld, and an accepted invitation. The caller checked the right to.
pub(crate) async fn grant_share(
    tx: &mut sqlx::Transaction<'static, Any>,
    world_id: Uuid,
    (user_id, username): (Uuid, String),
    role: ShareRole,
) -> Result<WorldShare> {
    sqlx::query(
        "INSERT INTO world_shares (world_id, user_id, role, create_time) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (world_id, user_id) DO UPDATE SET role = excluded.role",
    )
    .bind(world_id.to_string())
    .bind(user_id.to_string())
    .bind(role.as_str_name())
    .bind(now_micros())
    .execute(&mut **tx)
    .await?;
    let created: i64 = sqlx::query("SELECT create_time FROM world_shares WHERE world_id = $1 AND user_id = $2")
        .bind(world_id.to_string())
        .bind(user_id.to_string())
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    Ok(WorldShare {
        world_id: world_id.to_string(),
        user_id: user_id.to_string(),
        username,
        role: role.into(),
        create_time: Some(timestamp(created)),
    })
}

/// A user by id or username (ignoring case); NOT_FOUND when there is none.
pub(crate) async fn find_user(tx: &mut sqlx::Transaction<'static, Any>, user: &str) -> Result<(Uuid, String)> {
    let row = match Uuid::try_parse(user) {
        Ok(id) => sqlx::query("SELECT id, username FROM users WHERE id = $1").bind(id.to_string()),
        Err(_) => sqlx::query("SELECT id, username FROM users WHERE username_key = $1").bind(user.to_lowercase()),
    }
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| not_found("user"))?;
    let id: String = row.try_get(0)?;
    Ok((id.parse().map_err(|_| Error::Internal("bad user id".into()))?, row.try_get(1)?))
}

#[tonic::async_trait]
impl WorldService for WorldsApi {
    async fn create_world(&self, request: Request<CreateWorldRequest>) -> Result<Response<World>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.create(caller, request.into_inner()).await?))
    }

    async fn get_world(&self, request: Request<GetWorldRequest>) -> Result<Response<World>, Status> {
        let caller = caller(&request);
        let id = domain::id(&request.get_ref().id).map_err(|e| invalid("id", e))?;
        Ok(Response::new(self.get(caller, id).await?))
    }

    async fn list_worlds(&self, request: Request<ListWorldsRequest>) -> Result<Response<ListWorldsResponse>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.list(caller, request.into_inner()).await?))
    }

    async fn update_world(&self, request: Request<UpdateWorldRequest>) -> Result<Response<World>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.update(caller, request.into_inner()).await?))
    }

    async fn delete_world(&self, request: Request<DeleteWorldRequest>) -> Result<Response<()>, Status> {
        let caller = caller(&request);
        self.delete(caller, request.into_inner()).await?;
        Ok(Response::new(()))
    }

    async fn share_world(&self, request: Request<ShareWorldRequest>) -> Result<Response<WorldShare>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.share(caller, request.into_inner()).await?))
    }

    async fn unshare_world(&self, request: Request<UnshareWorldRequest>) -> Result<Response<()>, Status> {
        let caller = caller(&request);
        self.unshare(caller, request.into_inner()).await?;
        Ok(Response::new(()))
    }

    async fn list_world_shares(
        &self,
        request: Request<ListWorldSharesRequest>,
    ) -> Result<Response<ListWorldSharesResponse>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.list_shares(caller, request.into_inner()).await?))
    }
}
