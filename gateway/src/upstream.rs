//! The channels to story-service and gpt-worker (lazy connect, reconnect, HTTP/2
//! keepalive, several addresses balanced on the client side) and the codec that lets
//! tonic's generic client call any method with `DynamicMessage`s.

use std::time::Duration;

use fabula_proto::server::MAX_MESSAGE_SIZE;
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

/// A codec of dynamic messages, decoding responses as `response`.
#[derive(Clone)]
pub struct DynamicCodec {
    response: MessageDescriptor,
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
        DynamicDecoder(self.response.clone())
    }
}

/// Writes a dynamic message.
pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst).map_err(|e| Status::internal(format!("cannot encode the request: {e}")))
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
            .map_err(|e| Status::internal(format!("cannot decode the response: {e}")))
    }
}

/// A service's URLs that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("upstream URL {url:?}: {reason}")]
pub struct UpstreamError {
    url: String,
    reason: String,
}

/// The two upstream services.
#[derive(Clone)]
pub struct Upstreams {
    story: Channel,
    worker: Channel,
    connect_timeout: Duration,
}

impl Upstreams {
    /// Channels to the configured services; nothing connects until the first call.
    pub fn new(settings: &Settings) -> Result<Self, UpstreamError> {
        Ok(Self {
            story: channel(&settings.story_service_url, settings)?,
            worker: channel(&settings.worker_service_url, settings)?,
            connect_timeout: settings.connect_timeout,
        })
    }

    pub fn channel(&self, upstream: Upstream) -> Channel {
        match upstream {
            Upstream::Story => self.story.clone(),
            Upstream::Worker => self.worker.clone(),
        }
    }

    /// A client of `upstream` once it is ready, or UNAVAILABLE within the connect timeout.
    async fn ready(&self, upstream: Upstream) -> Result<Grpc<Channel>, Status> {
        let mut grpc = Grpc::new(self.channel(upstream))
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        match tokio::time::timeout(self.connect_timeout, grpc.ready()).await {
            Ok(Ok(())) => Ok(grpc),
            Ok(Err(error)) => {
                tracing::warn!(%error, ?upstream, "upstream not ready");
                Err(Status::unavailable("the service is unavailable, try again"))
            }
            Err(_) => Err(Status::unavailable("the service did not answer in time, try again")),
        }
    }

    /// Calls the unary method of `route`.
    pub async fn unary(
        &self,
        route: &Route,
        request: tonic::Request<DynamicMessage>,
    ) -> Result<tonic::Response<DynamicMessage>, Status> {
        let mut grpc = self.ready(route.upstream).await?;
        let codec = DynamicCodec { response: route.method.output() };
        grpc.unary(request, route.grpc_path.clone(), codec).await
    }

    /// Calls the server-streaming method of `route`.
    pub async fn server_streaming(
        &self,
        route: &Route,
        request: tonic::Request<DynamicMessage>,
    ) -> Result<Streaming<DynamicMessage>, Status> {
        let mut grpc = self.ready(route.upstream).await?;
        let codec = DynamicCodec { response: route.method.output() };
        Ok(grpc.server_streaming(request, route.grpc_path.clone(), codec).await?.into_inner())
    }
}

/// A channel to the comma-separated `urls`: lazy, keepalive on, balanced when several.
fn channel(urls: &str, settings: &Settings) -> Result<Channel, UpstreamError> {
    let endpoints = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|url| endpoint(url, settings))
        .collect::<Result<Vec<_>, _>>()?;
    match endpoints.as_slice() {
        [] => Err(UpstreamError { url: urls.into(), reason: "no address".into() }),
        [one] => Ok(one.connect_lazy()),
        _ => Ok(Channel::balance_list(endpoints.into_iter())),
    }
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
