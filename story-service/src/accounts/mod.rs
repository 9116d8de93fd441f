//! AccountService: registration, sign-in, refresh tokens, the signed-in user's
//! profile and password, and the administration of accounts.
//!
//! - [`signin`]: Register, Login, RefreshToken, Logout.
//! - [`profile`]: GetMe, UpdateMe, ChangePassword.
//! - [`admin`]: ListUsers, UpdateUser, and [`ensure_admin`] at start.
//! - [`identities`]: IdentityService, signing in with OpenID Connect providers.
//! - [`users`] (the `users` table), [`sessions`] (refresh tokens), [`passwords`]
//!   (Argon2id), [`throttle`] (slowing down password guessing), [`validate`]
//!   (the rules of each field).
//!
//! Access tokens are the [`TokenIssuer`](fabula_runtime::token::TokenIssuer)'s; they
//! die with their user because [`crate::authn`] checks the user on every call, and
//! every change that should end sessions here also calls `authn.forget`.

mod admin;
pub mod identities;
pub(crate) use admin::require_admin;
mod passwords;
mod profile;
mod sessions;
mod signin;
mod throttle;
mod users;
mod validate;

pub use admin::ensure_admin;
use fabula_contracts::pb::accounts::{
    AuthResponse, ChangePasswordRequest, GetMeRequest, ListUsersRequest, ListUsersResponse, LoginRequest,
    LogoutRequest, RefreshTokenRequest, RegisterRequest, UpdateMeRequest, UpdateUserRequest, User,
    account_service_server::AccountService,
};
use fabula_runtime::auth::caller;
use tonic::{Request, Response, Status};

use self::users::Account;
use crate::State;

pub struct AccountsApi(pub State);

impl AccountsApi {
    /// What a successful sign-in returns: `account`, a fresh access token, and
    /// `refresh_token`.
    fn signed_in(&self, account: &Account, refresh_token: String) -> AuthResponse {
        let issued = self.0.issuer.issue(account.id, account.role);
        AuthResponse {
            user: Some(account.to_proto()),
            access_token: issued.token,
            refresh_token,
            expires_in: i64::try_from(issued.expires_in.as_secs()).unwrap_or(i64::MAX),
        }
    }
}

#[tonic::async_trait]
impl AccountService for AccountsApi {
    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<AuthResponse>, Status> {
        Ok(Response::new(self.register_account(request.into_inner()).await?))
    }

    async fn login(&self, request: Request<LoginRequest>) -> Result<Response<AuthResponse>, Status> {
        Ok(Response::new(self.sign_in(request.into_inner()).await?))
    }

    async fn refresh_token(&self, request: Request<RefreshTokenRequest>) -> Result<Response<AuthResponse>, Status> {
        Ok(Response::new(self.refresh_session(request.into_inner()).await?))
    }

    async fn logout(&self, request: Request<LogoutRequest>) -> Result<Response<()>, Status> {
        self.sign_out(request.into_inner()).await?;
        Ok(Response::new(()))
    }

    async fn get_me(&self, request: Request<GetMeRequest>) -> Result<Response<User>, Status> {
        Ok(Response::new(self.me(caller(&request)).await?))
    }

    async fn update_me(&self, request: Request<UpdateMeRequest>) -> Result<Response<User>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.update_profile(caller, request.into_inner()).await?))
    }

    async fn change_password(&self, request: Request<ChangePasswordRequest>) -> Result<Response<()>, Status> {
        let caller = caller(&request);
        self.replace_password(caller, request.into_inner()).await?;
        Ok(Response::new(()))
    }

    async fn list_users(&self, request: Request<ListUsersRequest>) -> Result<Response<ListUsersResponse>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.list_accounts(caller, request.into_inner()).await?))
    }

    async fn update_user(&self, request: Request<UpdateUserRequest>) -> Result<Response<User>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.update_account(caller, request.into_inner()).await?))
    }
}
