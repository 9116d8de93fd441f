//! gpt-worker's client of story-service. Every call carries a delegated token: the
//! worker acts for the job's owner, so story-service checks the owner's rights and
//! a job can write only where its owner could.

use std::sync::Arc;

use fabula_contracts::pb::{
    accounts::account_service_client::AccountServiceClient,
    story::{
        entity_service_client::EntityServiceClient, event_service_client::EventServiceClient,
        location_service_client::LocationServiceClient, proposal_service_client::ProposalServiceClient,
        revision_service_client::RevisionServiceClient, story_service_client::StoryServiceClient,
        world_service_client::WorldServiceClient,
    },
};
use fabula_runtime::{metadata::AUTHORIZATION, server::MAX_MESSAGE_SIZE, token::DelegationIssuer};
use tonic::{Request, transport::Channel};
use uuid::Uuid;

/// Connections to story-service, made lazily and re-made when it comes back.
#[derive(Clone)]
pub struct StoryClient {
    channel: Channel,
    delegation: Arc<DelegationIssuer>,
}

/// An accessor for a generated client, with Fabula's message limits.
macro_rules! client {
    ($name:ident, $client:ident) => {
        pub fn $name(&self) -> $client<Channel> {
            $client::new(self.channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE)
        }
    };
}

impl StoryClient {
    /// A client of the story-service at `url`; nothing connects until the first call.
    pub fn new(url: &str, delegation: Arc<DelegationIssuer>) -> Result<Self, http::uri::InvalidUri> {
        let endpoint = Channel::from_shared(url.to_owned())?
            .connect_timeout(std::time::Duration::from_secs(5))
            .http2_keep_alive_interval(std::time::Duration::from_secs(30))
            .tcp_nodelay(true);
        Ok(Self { channel: endpoint.connect_lazy(), delegation })
    }

    /// `message` as a request made by `user`, through this worker.
    pub fn as_user<T>(&self, user: Uuid, message: T) -> Request<T> {
        Self::with_token(self.delegation.token_for(user), message)
    }

    /// `message` as a request made by `user` through this worker while it runs job
    /// `job`: story-service records the job as the author of what it writes.
    pub fn for_job<T>(&self, user: Uuid, job: Uuid, message: T) -> Request<T> {
        Self::with_token(self.delegation.token_for_job(user, job), message)
    }

    fn with_token<T>(token: String, message: T) -> Request<T> {
        let mut request = Request::new(message);
        let bearer = format!("Bearer {token}");
        request.metadata_mut().insert(AUTHORIZATION, bearer.parse().expect("a token is a valid header value"));
        request.set_timeout(std::time::Duration::from_secs(30));
        request
    }

    client!(accounts, AccountServiceClient);
    client!(worlds, WorldServiceClient);
    client!(stories, StoryServiceClient);
    client!(entities, EntityServiceClient);
    client!(locations, LocationServiceClient);
    client!(events, EventServiceClient);
    client!(revisions, RevisionServiceClient);
    client!(proposals, ProposalServiceClient);
}
