//! What every Fabula gRPC server has besides its own services: the auth layer,
//! reflection (v1 and v1alpha, for grpcurl and older clients), health, message limits
//! and keepalive.

use std::{sync::Arc, time::Duration};

use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::server::HealthReporter;
use tower::layer::util::{Identity, Stack};

use crate::auth::{AuthLayer, Authenticator};

/// The largest message a Fabula server accepts or sends: a story's 1 MiB of content
/// plus its fields, with room to spare.
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// A server builder with keepalive and the auth layer in place.
pub fn builder(authn: Arc<dyn Authenticator>) -> Server<Stack<AuthLayer, Identity>> {
    Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .layer(AuthLayer::new(authn))
}

/// Reflection v1 and v1alpha over Fabula's contracts and the health service,
/// advertising `services` (the process's own) besides health and reflection.
pub fn reflection(
    services: &[&str],
) -> (
    tonic_reflection::server::v1::ServerReflectionServer<impl tonic_reflection::server::v1::ServerReflection>,
    tonic_reflection::server::v1alpha::ServerReflectionServer<impl tonic_reflection::server::v1alpha::ServerReflection>,
) {
    let configure = || {
        let builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health")
            .with_service_name("grpc.reflection.v1.ServerReflection")
            .with_service_name("grpc.reflection.v1alpha.ServerReflection");
        services.iter().fold(builder, |builder, name| builder.with_service_name(*name))
    };
    let v1 = configure().build_v1().expect("Fabula's descriptor set is valid");
    let v1alpha = configure().build_v1alpha().expect("Fabula's descriptor set is valid");
    (v1, v1alpha)
}

/// The `grpc.health.v1` service and the handle that sets each service's status.
pub fn health()
-> (HealthReporter, tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>) {
    tonic_health::server::health_reporter()
}

/// Accepted connections of `listener`, with Nagle off for small RPCs.
pub fn incoming(listener: tokio::net::TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Whether the server at `addr` answers SERVING for `service` ("" for the whole
/// process) within `timeout`: the binaries' `--health-check`, for container probes.
pub async fn is_serving(addr: std::net::SocketAddr, service: &str, timeout: Duration) -> bool {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let host = if addr.ip().is_unspecified() { std::net::Ipv4Addr::LOCALHOST.into() } else { addr.ip() };
    let url = format!("http://{}", std::net::SocketAddr::new(host, addr.port()));
    let check = async {
        let channel = tonic::transport::Endpoint::from_shared(url).ok()?.connect().await.ok()?;
        let request = HealthCheckRequest { service: service.to_owned() };
        let response = HealthClient::new(channel).check(request).await.ok()?;
        Some(response.into_inner().status == ServingStatus::Serving as i32)
    };
    tokio::time::timeout(timeout, check).await.ok().flatten().unwrap_or(false)
}
