//! LocationService: the places of a world, optionally on its map.
//!
//! A location is on the map when it has `coordinates` (stored as nullable `x`, `y`);
//! both must be finite numbers. An update whose mask names `coordinates` without
//! sending them takes the location off the map. Deleting a location removes it from
//! the stories and events that link it (ON DELETE CASCADE on `story_locations` and
//! `event_locations`).

use fabula_contracts::pb::story::{
    Coordinates, CreateLocationRequest, DeleteLocationRequest, GetLocationRequest, ListLocationsRequest,
    ListLocationsResponse, Location, ResourceKind, RevisionKind, UpdateLocationRequest,
    location_service_server::LocationService, snapshot::Resource,
};
use fabula_runtime::{
    auth::{Caller, caller},
    errors::FieldViolations,
    rules::{self, story::location as declared},
};
use fabula_store::{
    db::now_micros,
    error::{Result, invalid},
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

const UPDATABLE: &[&str] = rules::story::update_location_request::UPDATE_MASK.paths;
const LISTING: Listing = Listing {
    page_size: &rules::story::list_locations_request::PAGE_SIZE,
    page_token: &rules::story::list_locations_request::PAGE_TOKEN,
    filter: &rules::story::list_locations_request::FILTER,
    columns: &[("name", "t.name")],
};

pub struct LocationsApi(pub State);

impl WorldChild for Location {
    const TABLE: &'static str = "locations";
    const NOUN: &'static str = "location";
    const KIND: ResourceKind = ResourceKind::Location;
    const COLUMNS: &'static str =
        "t.id, t.world_id, t.name, t.description, t.x, t.y, t.version, t.create_time, t.update_time";

    fn from_row(row: &AnyRow) -> Result<Self> {
        let (x, y): (Option<f64>, Option<f64>) = (row.try_get(4)?, row.try_get(5)?);
        let Stamps { etag, create_time, update_time } = Stamps::read(row, 6)?;
        Ok(Location {
            id: row.try_get(0)?,
            world_id: row.try_get(1)?,
            name: row.try_get(2)?,
            description: row.try_get(3)?,
            coordinates: x.zip(y).map(|(x, y)| Coordinates { x, y }),
            etag,
            create_time,
            update_time,
        })
    }

    fn id(&self) -> &str {
        &self.id
    }
}

/// The fields of a location a caller may set, validated.
#[derive(Debug, Default, PartialEq)]
struct LocationFields {
    name: String,
    description: String,
    /// `(x, y)`, or `None` off the map.
    coordinates: Option<(f64, f64)>,
}

impl LocationFields {
    /// Validates every field of `location`, filing each problem under `location.<field>`.
    fn check(location: &Location, violations: &mut FieldViolations) -> Self {
        Self {
            name: violations.check("location.name", rules::text(&location.name, &declared::NAME)).unwrap_or_default(),
            description: violations
                .check("location.description", rules::text(&location.description, &declared::DESCRIPTION))
                .unwrap_or_default(),
            coordinates: location.coordinates.as_ref().map(|c| {
                let x = violations.check("location.coordinates.x", finite(c.x));
                let y = violations.check("location.coordinates.y", finite(c.y));
                (x.unwrap_or_default(), y.unwrap_or_default())
            }),
        }
    }

    /// Validates every field of `location`, reporting all problems at once.
    fn parse(location: &Location) -> Result<Self> {
        let mut violations = FieldViolations::new();
        let fields = Self::check(location, &mut violations);
        violations.finish()?;
        Ok(fields)
    }

    // The coordinates are bound as plain numbers with a flag saying whether they count:
    // sqlx 0.9's `Any` driver sends a missing f64 as a float4 NULL, and a PostgreSQL
    // connection that cached the statement that way then refuses real coordinates.

    /// 1 when the location is on the map.
    fn on_map(&self) -> i64 {
        i64::from(self.coordinates.is_some())
    }

    fn x(&self) -> f64 {
        self.coordinates.map_or(0.0, |(x, _)| x)
    }

    fn y(&self) -> f64 {
        self.coordinates.map_or(0.0, |(_, y)| y)
    }
}

/// A coordinate: any finite number (not NaN nor an infinity).
fn finite(value: f64) -> Result<f64, String> {
    if value.is_finite() { Ok(value) } else { Err(format!("must be a finite number, not {value}")) }
}

/// Whether `path` of `location` was sent, for an update without a mask.
fn populated(location: &Location, path: &str) -> bool {
    match path {
        "name" => !location.name.is_empty(),
        "description" => !location.description.is_empty(),
        "coordinates" => location.coordinates.is_some(),
        _ => false,
    }
}

/// `current` with the fields of `mask` taken from `sent`.
fn merge(sent: Location, current: Location, mask: &Mask) -> Location {
    Location {
        name: if mask.has("name") { sent.name } else { current.name },
        description: if mask.has("description") { sent.description } else { current.description },
        coordinates: if mask.has("coordinates") { sent.coordinates } else { current.coordinates },
        ..current
    }
}

impl LocationsApi {
    async fn create(&self, caller: Caller, request: CreateLocationRequest) -> Result<Location> {
        let mut violations = FieldViolations::new();
        let target = CreateTarget::parse(
            &request.world_id,
            &request.request_id,
            &rules::story::create_location_request::REQUEST_ID,
            &mut violations,
        );
        let fields = match &request.location {
            Some(location) => LocationFields::check(location, &mut violations),
            None => {
                violations.add("location", "is required");
                LocationFields::default()
            }
        };
        violations.finish()?;
        let (mut tx, id) = match children::begin_create::<Location>(&self.0.db, &caller, &target).await? {
            Begun::New { tx, id } => (tx, id),
            Begun::Replay(first) => return children::get(&self.0.db, &caller, first).await,
        };
        let inserted = sqlx::query(
            "INSERT INTO locations (id, world_id, name, description, x, y, version, create_time, update_time) \
             VALUES ($1, $2, $3, $4, CASE WHEN $8 = 1 THEN $5 END, CASE WHEN $8 = 1 THEN $6 END, 1, $7, $7)",
        )
        .bind(id.to_string())
        .bind(target.world_id.to_string())
        .bind(&fields.name)
        .bind(&fields.description)
        .bind(fields.x())
        .bind(fields.y())
        .bind(now_micros())
        .bind(fields.on_map())
        .execute(&mut *tx)
        .await?;
        let write = Write::of(RevisionKind::Create, ResourceKind::Location, id, None);
        children::finish(tx, &caller, write, inserted.rows_affected()).await
    }

    async fn update(&self, caller: Caller, request: UpdateLocationRequest) -> Result<Location> {
        let sent = request.location.ok_or_else(|| invalid("location", "is required"))?;
        let (id, mask) = update::target(&sent.id, "location.id", request.update_mask.as_ref(), UPDATABLE, |path| {
            populated(&sent, path)
        })?;
        let (mut tx, version) = children::begin_change::<Location>(&self.0.db, &caller, id, &sent.etag).await?;
        let current: Location = children::fetch(&mut *tx, id).await?;
        if mask.is_empty() {
            return Ok(current);
        }
        let write =
            Write::of(RevisionKind::Update, ResourceKind::Location, id, Some(Resource::Location(current.clone())));
        let fields = LocationFields::parse(&merge(sent, current, &mask))?;
        let updated = sqlx::query(
            "UPDATE locations SET name = $1, description = $2, x = CASE WHEN $8 = 1 THEN $3 END, \
             y = CASE WHEN $8 = 1 THEN $4 END, version = version + 1, update_time = $5 WHERE id = $6 AND version = $7",
        )
        .bind(&fields.name)
        .bind(&fields.description)
        .bind(fields.x())
        .bind(fields.y())
        .bind(now_micros())
        .bind(id.to_string())
        .bind(version)
        .bind(fields.on_map())
        .execute(&mut *tx)
        .await?;
        children::finish(tx, &caller, write, updated.rows_affected()).await
    }
}

#[tonic::async_trait]
impl LocationService for LocationsApi {
    async fn create_location(&self, request: Request<CreateLocationRequest>) -> Result<Response<Location>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.create(caller, request.into_inner()).await?))
    }

    async fn get_location(&self, request: Request<GetLocationRequest>) -> Result<Response<Location>, Status> {
        let caller = caller(&request);
        let id = domain::id(&request.get_ref().id).map_err(|e| invalid("id", e))?;
        Ok(Response::new(children::get(&self.0.db, &caller, id).await?))
    }

    async fn list_locations(
        &self,
        request: Request<ListLocationsRequest>,
    ) -> Result<Response<ListLocationsResponse>, Status> {
        let caller = caller(&request);
        let request = request.get_ref();
        let list = ListRequest {
            method: "ListLocations",
            world_id: &request.world_id,
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
        };
        let page = children::list::<Location>(&self.0.db, &caller, list, &LISTING).await?;
        Ok(Response::new(ListLocationsResponse {
            locations: page.items,
            next_page_token: page.next_page_token,
            total_size: page.total_size,
        }))
    }

    async fn update_location(&self, request: Request<UpdateLocationRequest>) -> Result<Response<Location>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.update(caller, request.into_inner()).await?))
    }

    async fn delete_location(&self, request: Request<DeleteLocationRequest>) -> Result<Response<()>, Status> {
        let caller = caller(&request);
        let request = request.get_ref();
        children::delete::<Location>(&self.0.db, &caller, &request.id, &request.etag).await?;
        Ok(Response::new(()))
    }
}

#[cfg(test)]
mod tests {
    use prost_types::FieldMask;
    use tonic::Code;

    use super::*;
    use crate::children::testing::{self, by, code, violated};

    fn place(name: &str, coordinates: Option<(f64, f64)>) -> Location {
        Location {
            name: name.into(),
            coordinates: coordinates.map(|(x, y)| Coordinates { x, y }),
            ..Location::default()
        }
    }

    #[test]
    fn bad_locations_name_every_bad_field() {
        let cases: Vec<(Location, Vec<&str>, &str)> = vec![
            (place("", None), vec!["location.name"], "a name is required"),
            (place(&"x".repeat(201), None), vec!["location.name"], "names have at most 200 characters"),
            (
                Location { description: "x".repeat(10_001), ..place("A", None) },
                vec!["location.description"],
                "descriptions have at most 10 000 characters",
            ),
            (place("A", Some((f64::NAN, 0.0))), vec!["location.coordinates.x"], "NaN is not a place"),
            (place("A", Some((0.0, f64::INFINITY))), vec!["location.coordinates.y"], "nor is infinity"),
            (
                place("", Some((f64::NEG_INFINITY, f64::NAN))),
                vec!["location.name", "location.coordinates.x", "location.coordinates.y"],
                "every problem is reported at once",
            ),
        ];
        for (bad, fields, why) in cases {
            assert_eq!(violated(LocationFields::parse(&bad)), fields, "{why}");
        }
    }

    #[test]
    fn good_locations_keep_their_coordinates() {
        assert_eq!(LocationFields::parse(&place(" Bree ", None)).unwrap().coordinates, None);
        let far = LocationFields::parse(&place("Edge", Some((-1e300, f64::MAX)))).unwrap();
        assert_eq!(far.coordinates, Some((-1e300, f64::MAX)));
    }

    #[tokio::test]
    async fn coordinates_are_stored_changed_and_cleared() {
        let world = testing::world().await;
        let api = LocationsApi(world.state.clone());
        let create = |location: Location| CreateLocationRequest {
            world_id: world.world_id.to_string(),
            location: Some(location),
            request_id: String::new(),
        };
        let bree = api.create_location(by(world.owner, create(place("Bree", Some((1.5, -2.0)))))).await.unwrap();
        let bree = bree.into_inner();
        assert_eq!(bree.coordinates, Some(Coordinates { x: 1.5, y: -2.0 }));
        let nan = create(place("Nowhere", Some((f64::NAN, 0.0))));
        assert_eq!(code(api.create_location(by(world.owner, nan)).await), Code::InvalidArgument);
        assert_eq!(code(api.create_location(by(world.reader, create(place("R", None)))).await), Code::PermissionDenied);

        let update = |location: Location, paths: &[&str]| UpdateLocationRequest {
            location: Some(Location { id: bree.id.clone(), ..location }),
            update_mask: Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
        };
        let renamed = api.update_location(by(world.owner, update(place("Bree-hill", None), &[]))).await.unwrap();
        let renamed = renamed.into_inner();
        assert_eq!(renamed.coordinates, bree.coordinates, "coordinates not sent without a mask are kept");
        let moved = api.update_location(by(world.owner, update(place("", Some((3.0, 4.0))), &[]))).await.unwrap();
        assert_eq!(
            (moved.get_ref().name.as_str(), moved.get_ref().coordinates),
            ("Bree-hill", Some(Coordinates { x: 3.0, y: 4.0 }))
        );
        let cleared = api.update_location(by(world.owner, update(place("", None), &["coordinates"]))).await.unwrap();
        assert_eq!(cleared.get_ref().coordinates, None, "a masked absent value takes it off the map");
        let nan = update(place("", Some((0.0, f64::NAN))), &["coordinates"]);
        assert_eq!(code(api.update_location(by(world.owner, nan)).await), Code::InvalidArgument);

        let list = ListLocationsRequest {
            world_id: world.world_id.to_string(),
            filter: r#"name = "Bree-hill""#.into(),
            ..ListLocationsRequest::default()
        };
        let found = api.list_locations(by(world.reader, list)).await.unwrap().into_inner();
        assert_eq!((found.total_size, found.locations[0].coordinates), (1, None));

        let delete = DeleteLocationRequest { id: bree.id.clone(), etag: cleared.get_ref().etag.clone() };
        assert_eq!(code(api.delete_location(by(world.reader, delete.clone())).await), Code::PermissionDenied);
        api.delete_location(by(world.owner, delete)).await.unwrap();
        let get = GetLocationRequest { id: bree.id.clone() };
        assert_eq!(code(api.get_location(by(world.owner, get)).await), Code::NotFound);
    }
}
