//! Fabula's gateway: REST/JSON in front of story-service and gpt-worker.
//!
//! A request goes: [`proxy`] (the one handler) → [`routes`] (the table read from the
//! `google.api.http` bindings of the contracts) → [`auth`] (the method's declared
//! policy) → [`limits`] → [`transcode`] (JSON → protobuf, the body read by [`strict`],
//! an update's mask made by [`patch`], every field checked against its declared rules
//! by [`validate`]) → [`upstream`]
//! (gRPC) → back through [`transcode`], or [`errors`] (status → HTTP), or [`sse`] for
//! streams.
//! [`ops`] serves health and metrics, [`openapi`] the OpenAPI document of the routes,
//! [`docs`] the reference page that reads it and [`web`] the web page at `/`. [`build`]
//! binds the listener and reads the contracts; [`App::run_until_stopped`] serves until
//! shutdown.

pub mod auth;
pub mod config;
pub mod docs;
pub mod errors;
pub mod limits;
pub mod openapi;
pub mod ops;
pub mod patch;
pub mod proxy;
pub mod routes;
pub mod sse;
pub mod strict;
pub mod transcode;
pub mod upstream;
pub mod validate;
pub mod web;

use std::{future::Future, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    routing::{get, post},
};
use fabula_runtime::{
    keys,
    token::{TokenVerifier, VerifyingKey},
};
use http::{HeaderName, HeaderValue, Method, header};
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use crate::config::Settings;
use crate::{
    auth::EdgeAuth,
    limits::Limits,
    ops::Metrics,
    routes::{RouteError, RouteTable},
    upstream::{UpstreamError, Upstreams},
};

/// What every request shares.
pub struct Gateway {
    pub table: RouteTable,
    pub upstreams: Upstreams,
    pub auth: EdgeAuth,
    pub limits: Limits,
    pub metrics: Metrics,
    pub settings: Settings,
    /// Cancelled at shutdown, to end the event streams that would otherwise hold it up.
    pub stop: CancellationToken,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Routes(#[from] RouteError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Key(#[from] keys::KeyFileError),
    #[error("invalid CORS origin {0:?}")]
    CorsOrigin(String),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
}

/// A gateway ready to serve on a bound listener.
pub struct App {
    listener: TcpListener,
    router: Router,
    gateway: Arc<Gateway>,
}

/// [`build_with_keys`] with story-service's public keys read from their configured file.
pub async fn build(settings: Settings) -> Result<App, BuildError> {
    let keys = keys::read_verifying_keys(&settings.token_public_key_file)?;
    build_with_keys(settings, keys).await
}

/// [`build_with_contracts`] serving Fabula's contracts.
pub async fn build_with_keys(settings: Settings, keys: Vec<VerifyingKey>) -> Result<App, BuildError> {
    let contracts = DescriptorPool::decode(fabula_contracts::FILE_DESCRIPTOR_SET).map_err(RouteError::from)?;
    build_with_contracts(settings, keys, contracts).await
}

/// Reads the services of `contracts` into the route table, as they declare them,
/// prepares the (lazy) upstream channels, and binds the listener; tokens are checked
/// with `keys`, story-service's public keys. A service the gateway was not built with
/// is served like its own: nothing in the gateway names a service.
pub async fn build_with_contracts(
    settings: Settings,
    keys: Vec<VerifyingKey>,
    contracts: DescriptorPool,
) -> Result<App, BuildError> {
    let table = RouteTable::from_pool(contracts, &settings)?;
    let cors = cors(&settings)?;
    let gateway = Arc::new(Gateway {
        table,
        upstreams: Upstreams::new(&settings)?,
        auth: EdgeAuth::new(TokenVerifier::new(keys)),
        limits: Limits::new(&settings.rate_limits),
        metrics: Metrics::default(),
        stop: CancellationToken::new(),
        settings,
    });
    let listen = gateway.settings.listen;
    let listener = TcpListener::bind(listen).await.map_err(|e| BuildError::Listen(listen, e))?;
    let router = router(gateway.clone(), cors);
    Ok(App { listener, router, gateway })
}

/// The gateway's own pages, and every other path to the transcoder.
fn router(gateway: Arc<Gateway>, cors: Option<CorsLayer>) -> Router {
    let router = Router::new()
        .route("/openapi.json", openapi::route(&gateway.table))
        .route("/docs", get(docs::page))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/auth/watch-cookie", post(sse::watch_cookie).delete(sse::clear_watch_cookie))
        .merge(web::routes())
        .fallback(proxy::handle)
        .with_state(gateway);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// The CORS layer for the configured origins; none when there are none (the
/// gateway's own origin needs no CORS).
fn cors(settings: &Settings) -> Result<Option<CorsLayer>, BuildError> {
    let origins = settings
        .cors_origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .map(|o| HeaderValue::from_str(o).map_err(|_| BuildError::CorsOrigin(o.to_owned())))
        .collect::<Result<Vec<_>, _>>()?;
    if origins.is_empty() {
        return Ok(None);
    }
    let allowed_headers = [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT]
        .into_iter()
        .chain(["x-request-id", "traceparent", "grpc-timeout", "last-event-id"].map(HeaderName::from_static));
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers(allowed_headers.collect::<Vec<_>>())
            .expose_headers([header::LOCATION, header::RETRY_AFTER, HeaderName::from_static("x-request-id")])
            .allow_credentials(true)
            .max_age(settings.cors_max_age),
    ))
}

impl App {
    /// The address the gateway listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then ends event streams and drains requests (for
    /// up to [`fabula_runtime::shutdown::GRACE`]).
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Self { listener, router, gateway } = self;
        tracing::info!(addr = ?listener.local_addr().ok(), routes = gateway.table.routes.len(), "gateway listening");
        let stop = gateway.stop.clone();
        let shutdown = async move {
            shutdown.await;
            stop.cancel();
        };
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let serve = |stopping| axum::serve(listener, service).with_graceful_shutdown(stopping).into_future();
        fabula_runtime::shutdown::serve_within_grace(shutdown, fabula_runtime::shutdown::GRACE, serve)
            .await
            .unwrap_or(Ok(()))
    }
}
