//! Typed gRPC clients of the services, all on one connection, with message limits far
//! above the services' own (so a test meets the service's limit, not the client's), and
//! requests sent as the holder of a token.

use std::{net::SocketAddr, time::Duration};

use fabula_contracts::pb::{
    accounts::{account_service_client::AccountServiceClient, identity_service_client::IdentityServiceClient},
    jobs::job_service_client::JobServiceClient,
    story::{
        entity_service_client::EntityServiceClient, event_service_client::EventServiceClient,
        invitation_service_client::InvitationServiceClient, location_service_client::LocationServiceClient,
        proposal_service_client::ProposalServiceClient, revision_service_client::RevisionServiceClient,
        stats_service_client::StatsServiceClient, story_service_client::StoryServiceClient,
        world_service_client::WorldServiceClient,
    },
};
use tonic::{Request, transport::Channel};

/// What the clients send and accept at most.
pub const MESSAGE_LIMIT: usize = 64 * 1024 * 1024;

/// `$client::new($channel)` with [`MESSAGE_LIMIT`] both ways.
macro_rules! limited {
    ($client:ident, $channel:expr) => {
        $client::new($channel).max_decoding_message_size(MESSAGE_LIMIT).max_encoding_message_size(MESSAGE_LIMIT)
    };
}

/// A new HTTP/2 connection to `addr`.
pub async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a valid URI")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap_or_else(|error| panic!("connect to {addr}: {error}"))
}

/// The clients of story-service's services, on one connection.
#[derive(Clone, Debug)]
pub struct StoryClients {
    channel: Channel,
}

impl StoryClients {
    pub fn new(channel: Channel) -> Self {
        Self { channel }
    }

    /// Clients of the story-service at `addr`, on a new connection.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::new(connect(addr).await)
    }

    /// The shared connection, for a client of any service.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn accounts(&self) -> AccountServiceClient<Channel> {
        limited!(AccountServiceClient, self.channel())
    }

    pub fn worlds(&self) -> WorldServiceClient<Channel> {
        limited!(WorldServiceClient, self.channel())
    }

    pub fn stories(&self) -> StoryServiceClient<Channel> {
        limited!(StoryServiceClient, self.channel())
    }

    pub fn entities(&self) -> EntityServiceClient<Channel> {
        limited!(EntityServiceClient, self.channel())
    }

    pub fn locations(&self) -> LocationServiceClient<Channel> {
        limited!(LocationServiceClient, self.channel())
    }

    pub fn events(&self) -> EventServiceClient<Channel> {
        limited!(EventServiceClient, self.channel())
    }

    pub fn revisions(&self) -> RevisionServiceClient<Channel> {
        limited!(RevisionServiceClient, self.channel())
    }

    pub fn invitations(&self) -> InvitationServiceClient<Channel> {
        limited!(InvitationServiceClient, self.channel())
    }

    pub fn proposals(&self) -> ProposalServiceClient<Channel> {
        limited!(ProposalServiceClient, self.channel())
    }

    pub fn identities(&self) -> IdentityServiceClient<Channel> {
        limited!(IdentityServiceClient, self.channel())
    }

    pub fn stats(&self) -> StatsServiceClient<Channel> {
        limited!(StatsServiceClient, self.channel())
    }
}

/// A JobService client (gpt-worker) on `channel`.
pub fn jobs_client(channel: Channel) -> JobServiceClient<Channel> {
    limited!(JobServiceClient, channel)
}

/// `message` with `authorization: Bearer <token>`.
pub fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().expect("a token is valid metadata"));
    request
}

/// `message` as `token`'s holder, or anonymous when `None`.
pub fn as_caller<T>(message: T, token: Option<&str>) -> Request<T> {
    match token {
        Some(token) => authed(message, token),
        None => Request::new(message),
    }
}
