//! story-service: Fabula's accounts and story data over gRPC.
//!
//! A request goes: [`fabula_proto::auth::AuthLayer`] (token → `Caller`, per the
//! method's declared policy) → the resource's API ([`worlds`], [`stories`],
//! [`entities`], [`locations`], [`events`], [`accounts`]) → [`access`] (may this
//! caller do this?) → the database ([`db`]). [`build`] binds the listener and
//! prepares everything; [`App::run_until_stopped`] serves until shutdown.

pub mod access;
// PENDING(accounts) pub mod accounts;
pub mod authn;
pub mod config;
pub mod db;
pub mod domain;
// PENDING(entities) pub mod entities;
pub mod error;
// PENDING(events) pub mod events;
pub mod filter;
pub mod idempotency;
pub mod keys;
// PENDING(links) pub mod links;
// PENDING(locations) pub mod locations;
pub mod pagination;
pub mod quotas;
// PENDING(stories) pub mod stories;
pub mod update;
pub mod worlds;

use std::{future::Future, net::SocketAddr, sync::Arc};

use fabula_proto::{
    // PENDING(accounts) pb::{accounts::account_service_server::AccountServiceServer, story},
    pb::story,
    server::{self, MAX_MESSAGE_SIZE},
    token::{TokenIssuer, TokenVerifier, VerifyingKey},
};
use tokio::net::TcpListener;

pub use crate::config::Settings;
use crate::{authn::StoryAuthenticator, db::Db};

/// What every handler shares.
#[derive(Clone)]
pub struct State {
    pub db: Db,
    pub issuer: Arc<TokenIssuer>,
    pub authn: Arc<StoryAuthenticator>,
    pub settings: Arc<Settings>,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot open the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot load the token key {0}: {1}")]
    Key(String, String),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("cannot create the administrator: {0}")]
    Admin(String),
}

/// A generated server with Fabula's message size limits.
macro_rules! limited {
    ($server:expr) => {
        $server.max_decoding_message_size(MAX_MESSAGE_SIZE).max_encoding_message_size(MAX_MESSAGE_SIZE)
    };
}

/// A service ready to serve on a bound listener.
pub struct App {
    listener: TcpListener,
    state: State,
}

/// Opens the database, runs migrations, loads the signing key, creates the first
/// administrator when configured, and binds the listener.
pub async fn build(settings: Settings) -> Result<App, BuildError> {
    let db = Db::connect(&settings.database_url, settings.database_connections).await?;
    let key = keys::signing_key(&settings)?;
    let verifier = TokenVerifier::new([key.verifying_key()]);
    let issuer = Arc::new(TokenIssuer::new(key, settings.access_token_ttl));
    let authn = Arc::new(StoryAuthenticator::new(verifier, db.clone()));
    // PENDING(accounts) accounts::ensure_admin(&db, &settings).await?;
    let listener = TcpListener::bind(settings.listen).await.map_err(|e| BuildError::Listen(settings.listen, e))?;
    let state = State { db, issuer, authn, settings: Arc::new(settings) };
    Ok(App { listener, state })
}

impl App {
    /// The address the service listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The public key that verifies the tokens this service issues.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.state.issuer.verifying_key()
    }

    /// Serves until `shutdown` resolves, then drains in-flight calls and closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let Self { listener, state } = self;
        let addr = listener.local_addr().ok();
        let (health_reporter, health) = server::health();
        let (reflection_v1, reflection_v1alpha) = server::reflection();
        for name in SERVICE_NAMES {
            health_reporter.set_service_status(*name, tonic_health::ServingStatus::Serving).await;
        }
        state.db.spawn_checkpoints();
        tracing::info!(?addr, "story-service listening");
        let served = server::builder(state.authn.clone())
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            // PENDING(accounts) .add_service(limited!(AccountServiceServer::new(accounts::AccountsApi(state.clone()))))
            .add_service(limited!(story::world_service_server::WorldServiceServer::new(worlds::WorldsApi(
                state.clone()
            ))))
            // PENDING(stories) .add_service(limited!(story::story_service_server::StoryServiceServer::new(stories::StoriesApi(state.clone()))))
            // PENDING(entities) .add_service(limited!(story::entity_service_server::EntityServiceServer::new(entities::EntitiesApi(state.clone()))))
            // PENDING(locations) .add_service(limited!(story::location_service_server::LocationServiceServer::new(locations::LocationsApi(state.clone()))))
            // PENDING(events) .add_service(limited!(story::event_service_server::EventServiceServer::new(events::EventsApi(state.clone()))))
            .serve_with_incoming_shutdown(server::incoming(listener), shutdown)
            .await;
        state.db.close().await;
        tracing::info!("story-service stopped");
        served
    }
}

/// The gRPC services this process serves, as health reports them.
pub const SERVICE_NAMES: &[&str] = &[
    "",
    "fabula.accounts.v1.AccountService",
    "fabula.story.v1.WorldService",
    "fabula.story.v1.StoryService",
    "fabula.story.v1.EntityService",
    "fabula.story.v1.LocationService",
    "fabula.story.v1.EventService",
];
