//! IdentityService: signing in with OpenID Connect providers (Google among them) and
//! the identities linked to an account.
//!
//! - [`provider`]: discovery, keys, the code exchange and ID token verification.
//! - [`flows`]: code flows started and not finished (state, nonce, PKCE verifier).
//! - [`store`]: the `user_identities` table.
//! - [`signin`]: what a verified identity signs in to, creates or links.

mod flows;
mod provider;
mod signin;
mod store;

use fabula_contracts::pb::accounts::{
    AuthResponse, FinishOidcSignInRequest, Identity, LinkIdentityRequest, ListMyIdentitiesRequest,
    ListMyIdentitiesResponse, ListOidcProvidersRequest, ListOidcProvidersResponse, OidcProvider,
    SignInWithIdTokenRequest, StartOidcSignInRequest, StartOidcSignInResponse, UnlinkIdentityRequest,
    identity_service_server::IdentityService,
};
use fabula_runtime::auth::caller;
pub use provider::Providers;
use tonic::{Request, Response, Status};

use super::AccountsApi;

#[tonic::async_trait]
impl IdentityService for AccountsApi {
    async fn list_oidc_providers(
        &self,
        _request: Request<ListOidcProvidersRequest>,
    ) -> Result<Response<ListOidcProvidersResponse>, Status> {
        let providers = self.0.oidc.settings().into_iter();
        let providers = providers.map(|p| OidcProvider { name: p.name.clone(), issuer: p.issuer.clone() }).collect();
        Ok(Response::new(ListOidcProvidersResponse { providers }))
    }

    async fn start_oidc_sign_in(
        &self,
        request: Request<StartOidcSignInRequest>,
    ) -> Result<Response<StartOidcSignInResponse>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.start_flow(&caller, request.into_inner()).await?))
    }

    async fn finish_oidc_sign_in(
        &self,
        request: Request<FinishOidcSignInRequest>,
    ) -> Result<Response<AuthResponse>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.finish_flow(&caller, request.into_inner()).await?))
    }

    async fn sign_in_with_id_token(
        &self,
        request: Request<SignInWithIdTokenRequest>,
    ) -> Result<Response<AuthResponse>, Status> {
        Ok(Response::new(self.sign_in_with_token(request.into_inner()).await?))
    }

    async fn link_identity(&self, request: Request<LinkIdentityRequest>) -> Result<Response<Identity>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.link_with_token(&caller, request.into_inner()).await?))
    }

    async fn unlink_identity(&self, request: Request<UnlinkIdentityRequest>) -> Result<Response<()>, Status> {
        let caller = caller(&request);
        self.unlink(&caller, request.into_inner()).await?;
        Ok(Response::new(()))
    }

    async fn list_my_identities(
        &self,
        request: Request<ListMyIdentitiesRequest>,
    ) -> Result<Response<ListMyIdentitiesResponse>, Status> {
        let user = caller(&request).require_user()?.user_id;
        let identities = store::list_of(&self.0.db.reader, user).await?;
        Ok(Response::new(ListMyIdentitiesResponse { identities }))
    }
}
