//! gpt-worker's authenticator. The token's signature is checked here, with
//! story-service's public key; whether the user still exists, is enabled, and may
//! use the model is asked of story-service (as the user, through a delegated
//! token) and trusted for at most a second, so a disabled user's tokens stop
//! working here within a second too.

use fabula_proto::{
    auth::{Authenticator, Principal, UserStatuses, unauthenticated},
    errors,
    pb::accounts::{GetMeRequest, Role},
    token::TokenVerifier,
};
use tonic::{Code, Status};
use uuid::Uuid;

use crate::story::StoryClient;

#[derive(Clone, Copy, Debug)]
pub struct UserStatus {
    pub role: Role,
    pub gpt_enabled: bool,
}

pub struct WorkerAuthenticator {
    verifier: TokenVerifier,
    story: StoryClient,
    statuses: UserStatuses<UserStatus>,
}

impl WorkerAuthenticator {
    pub fn new(verifier: TokenVerifier, story: StoryClient) -> Self {
        Self { verifier, story, statuses: UserStatuses::default() }
    }

    /// The user's current role and model access, from story-service.
    pub async fn status(&self, user_id: Uuid) -> Result<UserStatus, Status> {
        if let Some(status) = self.statuses.fresh(user_id) {
            return Ok(status);
        }
        let request = self.story.as_user(user_id, GetMeRequest {});
        let user = self.story.accounts().get_me(request).await.map_err(|status| match status.code() {
            Code::Unauthenticated | Code::NotFound => {
                unauthenticated("USER_DISABLED", "this account is disabled or gone")
            }
            _ => {
                tracing::warn!(code = ?status.code(), "story-service did not confirm a user");
                errors::status(
                    Code::Unavailable,
                    "STORY_SERVICE_UNAVAILABLE",
                    "cannot check your account now; try again",
                )
            }
        })?;
        let user = user.into_inner();
        let status =
            UserStatus { role: Role::try_from(user.role).unwrap_or(Role::User), gpt_enabled: user.gpt_enabled };
        self.statuses.remember(user_id, status);
        Ok(status)
    }

    async fn principal(&self, token: &str) -> Result<Principal, Status> {
        let verified = self.verifier.verify(token).map_err(|e| unauthenticated(e.reason(), e.to_string()))?;
        let status = self.status(verified.user_id).await?;
        Ok(Principal { user_id: verified.user_id, role: status.role })
    }
}

impl Authenticator for WorkerAuthenticator {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Principal, Status>> + Send + 'a>> {
        Box::pin(self.principal(token))
    }
}
