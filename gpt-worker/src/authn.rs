//! gpt-worker's authenticator. The token's signature is checked here, with
//! story-service's public key; whether the token still stands (its user exists and
//! is enabled, no password change revoked it) is asked of story-service by calling
//! GetMe with that very token, and trusted for at most a second, so a disabled
//! user's or a revoked token stops working here within a second too. Whether a user
//! may use the model comes from the same answer, or from a GetMe through a
//! delegated token when only the user is known.

use fabula_contracts::pb::accounts::{GetMeRequest, Role, User};
use fabula_runtime::{
    auth::{Authenticator, Principal, UserStatuses, unauthenticated},
    errors,
    metadata::AUTHORIZATION,
    token::TokenVerifier,
};
use tonic::{Code, Request, Status};
use uuid::Uuid;

use crate::story_client::StoryClient;

#[derive(Clone, Copy, Debug)]
pub struct UserStatus {
    pub role: Role,
    pub gpt_enabled: bool,
}

pub struct WorkerAuthenticator {
    verifier: TokenVerifier,
    story: StoryClient,
    /// Each user's status, by user id.
    statuses: UserStatuses<UserStatus>,
    /// The status each token was last confirmed with, by the token itself.
    confirmed: UserStatuses<UserStatus, String>,
}

impl WorkerAuthenticator {
    pub fn new(verifier: TokenVerifier, story: StoryClient) -> Self {
        Self { verifier, story, statuses: UserStatuses::default(), confirmed: UserStatuses::default() }
    }

    /// The user's current role and model access, from story-service.
    pub async fn status(&self, user_id: Uuid) -> Result<UserStatus, Status> {
        if let Some(status) = self.statuses.fresh(&user_id) {
            return Ok(status);
        }
        let user = self.story.accounts().get_me(self.story.as_user(user_id, GetMeRequest {})).await;
        self.learn(user_id, user)
    }

    /// Remembers what story-service answered of `user_id`: their status, or why not.
    fn learn(&self, user_id: Uuid, answer: Result<tonic::Response<User>, Status>) -> Result<UserStatus, Status> {
        let user = answer.map_err(|status| match status.code() {
            // Its reason (USER_DISABLED, TOKEN_REVOKED…) is the caller's to know.
            Code::Unauthenticated => status,
            Code::NotFound => errors::status(Code::Unauthenticated, "USER_NOT_FOUND", "this account no longer exists"),
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
        let status = match self.confirmed.fresh(token) {
            Some(status) => status,
            None => {
                let mut request = Request::new(GetMeRequest {});
                let bearer = format!("Bearer {token}")
                    .parse()
                    .map_err(|_| unauthenticated("TOKEN_MALFORMED", "the access token is malformed"))?;
                request.metadata_mut().insert(AUTHORIZATION, bearer);
                request.set_timeout(std::time::Duration::from_secs(5));
                let status = self.learn(verified.user_id, self.story.accounts().get_me(request).await)?;
                self.confirmed.remember(token.to_owned(), status);
                status
            }
        };
        Ok(Principal { user_id: verified.user_id, role: status.role, job_id: None })
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
