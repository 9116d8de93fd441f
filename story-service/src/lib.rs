//! story-service: Fabula's accounts and story data over gRPC.
//!
//! A request goes: [`fabula_runtime::auth::AuthLayer`] (token → `Caller`, per the
//! method's declared policy) → the resource's API ([`worlds`], [`stories`],
//! [`entities`], [`locations`], [`events`], [`revisions`], [`proposals`],
//! [`invitations`], [`accounts`]) → [`access`] (may this caller do this?) → the
//! database ([`fabula_store`]); every write records its revision
//! ([`revisions::record`]) in its own transaction. [`build`] binds the listener and
//! prepares everything; [`App::run_until_stopped`] serves until shutdown.

pub mod access;
pub mod accounts;
pub mod authn;
pub mod children;
pub mod config;
pub mod domain;
pub mod entities;
pub mod events;
pub mod idempotency;
pub mod invitations;
pub mod links;
pub mod locations;
pub mod proposals;
pub mod quotas;
pub mod revisions;
pub mod stats;
pub mod stories;
pub mod update;
pub mod words;
pub mod worlds;

use std::{future::Future, net::SocketAddr, sync::Arc};

use fabula_contracts::pb::{
    accounts::{account_service_server::AccountServiceServer, identity_service_server::IdentityServiceServer},
    story,
};
use fabula_runtime::{
    keys,
    server::{self, MAX_MESSAGE_SIZE},
    token::{self, TokenIssuer, TokenVerifier, VerifyingKey},
};
use fabula_store::db::Db;
use tokio::net::TcpListener;

use crate::authn::StoryAuthenticator;
pub use crate::config::Settings;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What every handler shares.
#[derive(Clone)]
pub struct State {
    pub db: Db,
    pub issuer: Arc<TokenIssuer>,
    pub authn: Arc<StoryAuthenticator>,
    pub settings: Arc<Settings>,
    /// The OpenID Connect providers people may sign in with.
    pub oidc: Arc<accounts::identities::Providers>,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot open the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Key(#[from] keys::KeyFileError),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("cannot create the administrator: {0}")]
    Admin(String),
    #[error("cannot make the HTTP client of the OpenID Connect providers: {0}")]
    Oidc(#[from] reqwest::Error),
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
    /// The keys this service accepts its own tokens by: the signing key's, then retired ones.
    token_keys: Vec<VerifyingKey>,
}

/// Opens the database, runs migrations, loads the signing key, creates the first
/// administrator when configured, and binds the listener.
pub async fn build(settings: Settings) -> Result<App, BuildError> {
    let db = Db::connect(&settings.database_url, settings.database_connections, &MIGRATOR).await?;
    words::count_uncounted(&db).await?;
    let key = match &settings.token_private_key_file {
        Some(path) => keys::read_signing_key(path)?,
        None => keys::development_key(&settings.data_dir, keys::ACCOUNTS_KEY_FILE)?,
    };
    let mut token_keys = vec![key.verifying_key()];
    if let Some(path) = &settings.token_retired_public_keys_file {
        token_keys.extend(keys::read_verifying_keys(path)?);
    }
    let worker_keys = match &settings.trusted_worker_key_file {
        Some(path) => keys::read_verifying_keys(path)?,
        None => vec![keys::development_key(&settings.data_dir, keys::WORKER_KEY_FILE)?.verifying_key()],
    };
    let verifier = worker_keys.iter().fold(TokenVerifier::new(token_keys.clone()), |verifier, key| {
        verifier.trust_service(token::WORKER_SERVICE, key)
    });
    let issuer = Arc::new(TokenIssuer::new(key, settings.access_token_ttl));
    let authn = Arc::new(StoryAuthenticator::new(verifier, db.clone()));
    accounts::ensure_admin(&db, &settings).await?;
    let listener = TcpListener::bind(settings.listen).await.map_err(|e| BuildError::Listen(settings.listen, e))?;
    let oidc = Arc::new(accounts::identities::Providers::new(&settings.oidc)?);
    let state = State { db, issuer, authn, settings: Arc::new(settings), oidc };
    Ok(App { listener, state, token_keys })
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

    /// Every public key its tokens may be signed with: the current one, then retired ones.
    pub fn token_verifying_keys(&self) -> Vec<VerifyingKey> {
        self.token_keys.clone()
    }

    /// Serves until `shutdown` resolves, then drains in-flight calls (for up to
    /// [`fabula_runtime::shutdown::GRACE`]) and closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let Self { listener, state, .. } = self;
        let addr = listener.local_addr().ok();
        let (health_reporter, health) = server::health();
        let (reflection_v1, reflection_v1alpha) = server::reflection(&SERVICE_NAMES[1..]);
        for name in SERVICE_NAMES {
            health_reporter.set_service_status(*name, tonic_health::ServingStatus::Serving).await;
        }
        state.db.spawn_checkpoints();
        revisions::spawn_sweep(state.db.clone(), state.settings.deleted_retention);
        proposals::spawn_sweep(state.db.writer.clone());
        tracing::info!(?addr, "story-service listening");
        let router = server::builder(state.authn.clone())
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(limited!(AccountServiceServer::new(accounts::AccountsApi(state.clone()))))
            .add_service(limited!(story::world_service_server::WorldServiceServer::new(worlds::WorldsApi(
                state.clone()
            ))))
            .add_service(limited!(story::story_service_server::StoryServiceServer::new(stories::StoriesApi(
                state.clone()
            ))))
            .add_service(limited!(story::entity_service_server::EntityServiceServer::new(entities::EntitiesApi(
                state.clone()
            ))))
            .add_service(limited!(story::location_service_server::LocationServiceServer::new(locations::LocationsApi(
                state.clone()
            ))))
            .add_service(limited!(story::event_service_server::EventServiceServer::new(events::EventsApi(
                state.clone()
            ))))
            .add_service(limited!(story::revision_service_server::RevisionServiceServer::new(revisions::RevisionsApi(
                state.clone()
            ))))
            .add_service(limited!(story::invitation_service_server::InvitationServiceServer::new(
                invitations::InvitationsApi(state.clone())
            )))
            .add_service(limited!(story::proposal_service_server::ProposalServiceServer::new(proposals::ProposalsApi(
                state.clone()
            ))))
            .add_service(limited!(IdentityServiceServer::new(accounts::AccountsApi(state.clone()))))
            .add_service(limited!(story::stats_service_server::StatsServiceServer::new(stats::StatsApi(
                state.clone()
            ))));
        let incoming = server::incoming(listener);
        let served =
            fabula_runtime::shutdown::serve_within_grace(shutdown, fabula_runtime::shutdown::GRACE, |stopping| {
                router.serve_with_incoming_shutdown(incoming, stopping)
            })
            .await
            .unwrap_or(Ok(()));
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
    "fabula.story.v1.RevisionService",
    "fabula.story.v1.InvitationService",
    "fabula.story.v1.ProposalService",
    "fabula.accounts.v1.IdentityService",
    "fabula.story.v1.StatsService",
];
