//! What every Fabula gRPC server has besides its own services: the auth layer, error
//! details on the errors tonic makes itself ([`ErrorDetailsLayer`]), reflection (v1 and
//! v1alpha, for grpcurl and older clients), health, message limits and keepalive.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tonic::{Code, transport::Server, transport::server::TcpIncoming};
use tonic_health::server::HealthReporter;
use tower::{
    Layer, Service,
    layer::util::{Identity, Stack},
};

use crate::{
    auth::{AuthLayer, Authenticator},
    errors, metadata,
};

pub mod reflection;
pub use reflection::Reflection;

/// The largest message a Fabula server accepts or sends: a story's 1 MiB of content
/// plus its fields, with room to spare.
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// A server builder with keepalive, the error-details layer and, inside it, the auth
/// layer in place.
pub fn builder(authn: Arc<dyn Authenticator>) -> Server<Stack<AuthLayer, Stack<ErrorDetailsLayer, Identity>>> {
    Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .layer(ErrorDetailsLayer)
        .layer(AuthLayer::new(authn))
}

/// Reflection v1 and v1alpha ([`reflection::Reflection`]) over Fabula's contracts,
/// health and reflection itself, listing `services` (the process's own) besides
/// health and reflection.
pub fn reflection(
    services: &[&str],
) -> (
    reflection::v1::server_reflection_server::ServerReflectionServer<Reflection>,
    reflection::v1alpha::server_reflection_server::ServerReflectionServer<Reflection>,
) {
    let descriptor_sets = [
        fabula_contracts::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        reflection::v1::FILE_DESCRIPTOR_SET,
        reflection::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let listed = services.iter().copied().chain(REFLECTION_AND_HEALTH).map(str::to_owned).collect();
    let reflection = Reflection::new(&descriptor_sets, listed).expect("the compiled-in descriptor sets decode");
    (
        reflection::v1::server_reflection_server::ServerReflectionServer::new(reflection.clone()),
        reflection::v1alpha::server_reflection_server::ServerReflectionServer::new(reflection),
    )
}

/// The services every Fabula server has besides its own.
const REFLECTION_AND_HEALTH: [&str; 3] =
    ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

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

/// The outermost layer of every Fabula server: errors that tonic makes itself (an
/// unknown method, a request too large or not protobuf, a response too large) carry no
/// details; this gives them an `ErrorInfo` ([`errors::add_missing_details`]), whether
/// the status comes in the response's headers (trailers-only) or in its trailers. A
/// status too large for the headers that carry it, which only a bug could make, is cut
/// down there too ([`errors::cut_oversize_status`]), so that no call fails at the
/// client for its error's size.
///
/// It also ends a call at its `grpc-timeout` with DEADLINE_EXCEEDED and an `ErrorInfo`.
/// tonic enforces that deadline too, but outside every layer, answering a bare
/// CANCELLED "Timeout expired"; this layer's deadline is taken just before tonic's and
/// tonic polls the call before its own timer, so this layer answers first. (Clients
/// that keep the deadline themselves, as tonic's do, give up at the same moment and
/// report their own error.) A server-wide `Server::timeout`, or the concurrency and
/// load-shed limits, would answer outside the layers without details: Fabula sets none.
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorDetailsLayer;

impl<S> Layer<S> for ErrorDetailsLayer {
    type Service = ErrorDetailsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ErrorDetailsService { inner }
    }
}

/// See [`ErrorDetailsLayer`].
#[derive(Clone, Debug)]
pub struct ErrorDetailsService<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, RB> Service<Request<B>> for ErrorDetailsService<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
    RB: Default,
{
    type Response = Response<DetailedBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Taken before the call so that it is never later than tonic's own deadline.
        let deadline = grpc_timeout(request.headers()).and_then(|t| tokio::time::Instant::now().checked_add(t));
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = match deadline {
                None => response.await?,
                Some(deadline) => match tokio::time::timeout_at(deadline, response).await {
                    Ok(response) => response?,
                    Err(_) => {
                        errors::status(Code::DeadlineExceeded, "DEADLINE_EXCEEDED", "Timeout expired").into_http()
                    }
                },
            };
            complete_status(response.headers_mut());
            Ok(response.map(|inner| DetailedBody { inner }))
        })
    }
}

/// What the layer does to the status in `headers`, if there is one: details where
/// they are missing, and a cut where it is too large.
fn complete_status(headers: &mut HeaderMap) {
    errors::add_missing_details(headers);
    errors::cut_oversize_status(headers);
}

/// The deadline a client set in `grpc-timeout`, if it is readable.
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    headers.get(metadata::GRPC_TIMEOUT)?.to_str().ok().and_then(metadata::parse_grpc_timeout)
}

/// A response body whose trailers, when they hold an error, get what
/// [`ErrorDetailsLayer`] gives it; everything else passes through untouched.
#[derive(Debug, Default)]
pub struct DetailedBody<B> {
    inner: B,
}

impl<B: Body + Unpin> Body for DetailedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(trailers) = frame.as_mut().and_then(|f| f.as_mut().ok()).and_then(Frame::trailers_mut) {
            complete_status(trailers);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tonic::Status;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_types::StatusExt;
    use tower::ServiceExt;

    use super::*;
    use crate::auth::Principal;

    /// Takes 30 s over any token, then refuses it: a call that needs one outlasts a
    /// short deadline. Health is public and never asks.
    struct Slow;

    impl Authenticator for Slow {
        fn authenticate<'a>(
            &'a self,
            _: &'a str,
        ) -> Pin<Box<dyn Future<Output = Result<Principal, Status>> + Send + 'a>> {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Err(Status::unauthenticated("too late"))
            })
        }
    }

    /// A Fabula server with the health service sending messages of at most
    /// `max_message` bytes, until the sender is dropped.
    async fn serve(max_message: usize) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_reporter, health) = self::health();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = builder(Arc::new(Slow))
            .add_service(health.max_encoding_message_size(max_message))
            .serve_with_incoming_shutdown(incoming(listener), async {
                let _ = stopped.await;
            });
        tokio::spawn(server);
        (addr, stop)
    }

    #[track_caller]
    fn assert_reason(status: &Status, code: Code, reason: &str) {
        assert_eq!(status.code(), code, "{status:?}");
        let info = status.get_details_error_info().unwrap_or_else(|| panic!("an ErrorInfo on {status:?}"));
        assert_eq!((info.reason.as_str(), info.domain.as_str()), (reason, errors::DOMAIN), "{status:?}");
    }

    /// A response too large for the server's limit fails in the response's trailers,
    /// after the headers went out: the body wrapper gives it its `ErrorInfo`.
    #[tokio::test]
    async fn an_error_in_the_trailers_gets_an_error_info() {
        let (addr, _stop) = serve(1).await;
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
        let failed = HealthClient::new(channel)
            .check(HealthCheckRequest { service: String::new() })
            .await
            .expect_err("a 2-byte answer is over a 1-byte limit");
        assert_reason(&failed, Code::OutOfRange, "RESPONSE_TOO_LARGE");
        assert!(failed.message().starts_with("Error, encoded message length too large"), "{failed:?}");
    }

    /// A body of trailers alone: where a status goes once the response's headers went out.
    #[derive(Default)]
    struct TrailersOnly(Option<HeaderMap>);

    impl Body for TrailersOnly {
        type Data = tonic::codegen::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
            Poll::Ready(self.0.take().map(|trailers| Ok(Frame::trailers(trailers))))
        }
    }

    /// A status no Fabula handler should make: 100 000 bytes of message.
    fn oversize_status() -> Status {
        let details =
            tonic_types::ErrorDetails::with_error_info("NOT_FOUND", errors::DOMAIN, std::collections::HashMap::new());
        Status::with_error_details(Code::NotFound, "x".repeat(100_000), details)
    }

    #[track_caller]
    fn assert_cut(headers: &HeaderMap, where_: &str) {
        let bytes: usize = [Status::GRPC_MESSAGE, Status::GRPC_STATUS_DETAILS]
            .iter()
            .filter_map(|n| headers.get(n))
            .map(|v| v.len())
            .sum();
        assert!(bytes <= errors::MAX_STATUS_BYTES, "{bytes} bytes of status in the {where_}");
        let status = Status::from_header_map(headers).unwrap_or_else(|| panic!("a status in the {where_}"));
        assert_reason(&status, Code::NotFound, "NOT_FOUND");
        assert_eq!(status.message().len(), errors::MAX_MESSAGE_BYTES, "the message is cut in the {where_}");
    }

    #[tokio::test]
    async fn an_oversize_status_is_cut_in_the_headers_and_in_the_trailers() {
        let in_headers = tower::service_fn(|_: Request<()>| async { Ok::<_, Status>(oversize_status().into_http()) });
        let response = ErrorDetailsLayer.layer(in_headers).oneshot(Request::new(())).await.unwrap();
        let response: Response<DetailedBody<TrailersOnly>> = response;
        assert_cut(response.headers(), "headers");

        let in_trailers = tower::service_fn(|_: Request<()>| async {
            let mut trailers = HeaderMap::new();
            oversize_status().add_header(&mut trailers).expect("a writable status");
            Ok::<_, Status>(Response::new(TrailersOnly(Some(trailers))))
        });
        let mut body = ErrorDetailsLayer.layer(in_trailers).oneshot(Request::new(())).await.unwrap().into_body();
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let trailers = frame.and_then(Result::ok).and_then(|f| f.into_trailers().ok()).expect("the trailers");
        assert_cut(&trailers, "trailers");
    }

    /// A tonic client gives up at the deadline itself and never sees the server's
    /// answer, so this asks over plain HTTP/2: the server answers DEADLINE_EXCEEDED
    /// with an `ErrorInfo`, before tonic's own bare CANCELLED "Timeout expired".
    #[tokio::test]
    async fn a_missed_deadline_is_deadline_exceeded_with_an_error_info() {
        let (addr, _stop) = serve(usize::MAX).await;
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        for _ in 0..20 {
            let request = http::Request::post(format!("http://{addr}/fabula.accounts.v1.AccountService/GetMe"))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .header(metadata::AUTHORIZATION, "Bearer anything")
                .header(metadata::GRPC_TIMEOUT, "20m")
                .body(())
                .unwrap();
            let (response, mut body) = client.clone().ready().await.unwrap().send_request(request, false).unwrap();
            // An empty GetMeRequest: not compressed, 0 bytes long.
            body.send_data(tonic::codegen::Bytes::from_static(&[0; 5]), true).unwrap();
            let response = tokio::time::timeout(Duration::from_secs(5), response)
                .await
                .expect("an answer long before the authenticator's 30 s")
                .unwrap();
            let status = Status::from_header_map(response.headers()).expect("a trailers-only status");
            assert_reason(&status, Code::DeadlineExceeded, "DEADLINE_EXCEEDED");
        }
    }
}
