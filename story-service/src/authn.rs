//! story-service's authenticator: a valid signature is not enough, the user must
//! still exist, not be disabled, and not have signed out every session since the
//! token was issued. User status is cached for at most a second, so a disabled
//! user's tokens stop working within a second.

use fabula_contracts::pb::accounts::Role;
use fabula_runtime::{
    auth::{Authenticator, Principal, UserStatuses, unauthenticated},
    token::TokenVerifier,
};
use sqlx::Row;
use tonic::Status;
use uuid::Uuid;

use fabula_store::{db::Db, error::Error};

#[derive(Clone, Copy, Debug)]
struct UserStatus {
    role: Role,
    disabled: bool,
    /// Tokens issued before this instant (Unix milliseconds) are refused.
    tokens_valid_after_ms: i64,
}

pub struct StoryAuthenticator {
    verifier: TokenVerifier,
    db: Db,
    /// `None` for a user who does not exist.
    statuses: UserStatuses<Option<UserStatus>>,
}

impl StoryAuthenticator {
    pub fn new(verifier: TokenVerifier, db: Db) -> Self {
        Self { verifier, db, statuses: UserStatuses::default() }
    }

    /// Drops what is cached of `user_id`, after a change to their account.
    pub fn forget(&self, user_id: Uuid) {
        self.statuses.forget(&user_id);
    }

    async fn status(&self, user_id: Uuid) -> Result<Option<UserStatus>, Error> {
        if let Some(status) = self.statuses.fresh(&user_id) {
            return Ok(status);
        }
        let row = sqlx::query("SELECT role, disabled, tokens_valid_after_ms FROM users WHERE id = $1")
            .bind(user_id.to_string())
            .fetch_optional(&self.db.reader)
            .await?;
        let status = match row {
            Some(row) => Some(UserStatus {
                role: Role::from_str_name(&row.try_get::<String, _>(0)?).unwrap_or(Role::User),
                disabled: row.try_get::<i64, _>(1)? != 0,
                tokens_valid_after_ms: row.try_get(2)?,
            }),
            None => None,
        };
        self.statuses.remember(user_id, status);
        Ok(status)
    }

    async fn principal(&self, token: &str) -> Result<Principal, Status> {
        let verified = self.verifier.verify(token).map_err(|e| unauthenticated(e.reason(), e.to_string()))?;
        let status = self.status(verified.user_id).await.map_err(Status::from)?;
        match status {
            None => Err(unauthenticated("USER_NOT_FOUND", "the account of this token no longer exists")),
            Some(s) if s.disabled => Err(unauthenticated("USER_DISABLED", "this account is disabled")),
            Some(s) if verified.issued_at_ms < s.tokens_valid_after_ms => {
                Err(unauthenticated("TOKEN_REVOKED", "this token was revoked; sign in again"))
            }
            Some(s) => Ok(Principal { user_id: verified.user_id, role: s.role, job_id: verified.job_id }),
        }
    }
}

impl Authenticator for StoryAuthenticator {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Principal, Status>> + Send + 'a>> {
        Box::pin(self.principal(token))
    }
}
