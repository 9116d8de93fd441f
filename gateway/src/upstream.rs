//! The channels to story-service and gpt-worker (lazy connect, reconnect, HTTP/2
//! keepalive, several addresses balanced on the client side) and the codec that lets
//! tonic's generic client call any method with `DynamicMessage`s.
//!
//! Each address of a service gets its own channel, taken in turn. One that cannot
//! connect is left out for a while and the call goes to the next, so a replica that
//! stops fails no request that another could serve.

use std::{
    future::Future,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use fabula_runtime::server::MAX_MESSAGE_SIZE;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::{
    Status, Streaming,
    client::Grpc,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::{Channel, Endpoint},
};

use crate::{
    config::Settings,
    routes::{Route, Upstream},
};

/// A codec of dynamic messages, decoding what it reads as one message type: the
/// gateway reads answers with it, and a gRPC server of dynamic messages requests.
#[derive(Clone)]
pub struct DynamicCodec {
    decodes: MessageDescriptor,
}

impl DynamicCodec {
    pub fn new(decodes: MessageDescriptor) -> Self {
        Self { decodes }
    }
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.decodes.clone())
    }
}

/// Writes a dynamic message.
pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst).map_err(|e| Status::internal(format!("cannot encode the message: {e}")))
    }
}

/// Reads a dynamic message of one type.
pub struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|e| Status::internal(format!("cannot decode the message: {e}")))
    }
}

/// A service's URLs that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("upstream URL {url:?}: {reason}")]
pub struct UpstreamError {
    url: String,
    reason: String,
}

/// How long an address that could not connect is left out.
const LEAVE_OUT: Duration = Duration::from_secs(2);

/// The two upstream services.
pub struct Upstreams {
    story: Replicas,
    worker: Replicas,
    connect_timeout: Duration,
}

/// The channels to one service's addresses, taken in turn.
struct Replicas {
    replicas: Vec<Replica>,
    next: AtomicUsize,
}

struct Replica {
    url: String,
    channel: Channel,
    /// Until when it is left out, after it could not connect.
    left_out: std::sync::Mutex<Option<Instant>>,
}

impl Replica {
    fn is_left_out(&self, now: Instant) -> bool {
        self.left_out.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some_and(|until| now < until)
    }

    fn leave_out(&self, until: Option<Instant>) {
        *self.left_out.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = until;
    }
}

impl Upstreams {
    /// Channels to the configured services; nothing connects until the first call.
    pub fn new(settings: &Settings) -> Result<Self, UpstreamError> {
        Ok(Self {
            story: replicas(&settings.story_service_url, settings)?,
            worker: replicas(&settings.worker_service_url, settings)?,
            connect_timeout: settings.connect_timeout,
        })
    }

    fn replicas(&self, upstream: Upstream) -> &Replicas {
        match upstream {
            Upstream::GptWorker => &self.worker,
            // A service without an upstream stops the gateway before it serves.
            Upstream::StoryService | Upstream::Unspecified => &self.story,
        }
    }

    /// A channel to each address of `upstream`.
    pub fn channels(&self, upstream: Upstream) -> impl Iterator<Item = Channel> + '_ {
        self.replicas(upstream).replicas.iter().map(|replica| replica.channel.clone())
    }

    /// A client of `upstream` once one of its addresses is ready, trying each in turn
    /// (those left out last), or UNAVAILABLE within the connect timeout.
    async fn ready(&self, upstream: Upstream) -> Result<(Grpc<Channel>, &Replica), Status> {
        let Replicas { replicas, next } = self.replicas(upstream);
        let first = next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let turn = || (0..replicas.len()).map(|k| &replicas[(first + k) % replicas.len()]);
        let usable = turn().filter(|r| !r.is_left_out(now));
        let left_out = turn().filter(|r| r.is_left_out(now));
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let mut status = Status::unavailable("the service is unavailable, try again");
        for replica in usable.chain(left_out) {
            let mut grpc = Grpc::new(replica.channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE);
            match tokio::time::timeout_at(deadline, grpc.ready()).await {
                Ok(Ok(())) => return Ok((grpc, replica)),
                Ok(Err(error)) => {
                    tracing::warn!(%error, ?upstream, url = %replica.url, "upstream not ready");
                    replica.leave_out(Some(Instant::now() + LEAVE_OUT));
                }
                Err(_) => {
                    status = Status::unavailable("the service did not answer in time, try again");
                    break;
                }
            }
        }
        Err(status)
    }

    /// Makes `call` on a ready address of `upstream`. A call that never reached the
    /// service ([`never_sent`]) goes to the next address, each tried once; the request
    /// is copied for that only when the service has several.
    async fn call<T, F>(
        &self,
        upstream: Upstream,
        mut request: tonic::Request<DynamicMessage>,
        call: impl Fn(Grpc<Channel>, tonic::Request<DynamicMessage>) -> F,
    ) -> Result<T, Status>
    where
        F: Future<Output = Result<T, Status>>,
    {
        let mut left = self.replicas(upstream).replicas.len();
        loop {
            let (grpc, replica) = self.ready(upstream).await?;
            left -= 1;
            let again = (left > 0).then(|| copy(&request));
            match (call(grpc, request).await, again) {
                (Err(status), Some(again)) if never_sent(&status) => {
                    tracing::warn!(?upstream, url = %replica.url, "upstream did not take the call, trying the next");
                    replica.leave_out(Some(Instant::now() + LEAVE_OUT));
                    request = again;
                }
                (result, _) => {
                    if result.is_ok() {
                        replica.leave_out(None);
                    }
                    return result;
                }
            }
        }
    }

    /// Calls the unary method of `route`.
    pub async fn unary(
        &self,
        route: &Route,
        request: tonic::Request<DynamicMessage>,
    ) -> Result<tonic::Response<DynamicMessage>, Status> {
        self.call(route.upstream, request, |mut grpc, request| async move {
            let codec = DynamicCodec::new(route.method.output());
            grpc.unary(request, route.grpc_path.clone(), codec).await
        })
        .await
    }

    /// Calls the server-streaming method of `route`.
    pub async fn server_streaming(
        &self,
        route: &Route,
        request: tonic::Request<DynamicMessage>,
    ) -> Result<Streaming<DynamicMessage>, Status> {
        self.call(route.upstream, request, |mut grpc, request| async move {
            let codec = DynamicCodec::new(route.method.output());
            Ok(grpc.server_streaming(request, route.grpc_path.clone(), codec).await?.into_inner())
        })
        .await
    }
}

/// The same message with the same metadata (token, request id, deadline).
fn copy(request: &tonic::Request<DynamicMessage>) -> tonic::Request<DynamicMessage> {
    let mut copy = tonic::Request::new(request.get_ref().clone());
    *copy.metadata_mut() = request.metadata().clone();
    copy
}

/// Whether `status` says the call never reached the service, so that another replica
/// may take it whatever it does: the connection was refused; the request was still
/// queued when its connection closed (hyper's "canceled"); or the service refused its
/// stream, or was shutting down (a GOAWAY) and never processed it (RFC 9113 §8.7, §6.8).
fn never_sent(status: &Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        if error.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_canceled) {
            return true;
        }
        if let Some(h2) = error.downcast_ref::<h2::Error>() {
            return h2.reason() == Some(h2::Reason::REFUSED_STREAM) || (h2.is_go_away() && h2.is_remote());
        }
        source = error.source();
    }
    false
}

/// A lazy channel, keepalive on, to each of the comma-separated `urls`.
fn replicas(urls: &str, settings: &Settings) -> Result<Replicas, UpstreamError> {
    let replicas = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|url| {
            let channel = endpoint(url, settings)?.connect_lazy();
            Ok(Replica { url: url.to_owned(), channel, left_out: std::sync::Mutex::new(None) })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if replicas.is_empty() {
        return Err(UpstreamError { url: urls.into(), reason: "no address".into() });
    }
    Ok(Replicas { replicas, next: AtomicUsize::new(0) })
}

fn endpoint(url: &str, settings: &Settings) -> Result<Endpoint, UpstreamError> {
    let endpoint =
        Endpoint::from_shared(url.to_owned()).map_err(|e| UpstreamError { url: url.into(), reason: e.to_string() })?;
    Ok(endpoint
        .connect_timeout(settings.connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(settings.keepalive)
        .keep_alive_timeout(settings.keepalive)
        .keep_alive_while_idle(true))
}
