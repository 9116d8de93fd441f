//! What a verified identity does: sign in to its account, create one at its first
//! sign-in, or link to the signed-in caller's account.
//!
//! An identity whose email belongs to an account it is not linked to is never linked
//! silently: FAILED_PRECONDITION (IDENTITY_NOT_LINKED) says to sign in and link it. A
//! link flow is finished only by the user who started it, so a link URL sent to
//! someone else cannot tie their identity to the sender's account.

use fabula_contracts::pb::accounts::{
    AuthResponse, FinishOidcSignInRequest, Identity, LinkIdentityRequest, Role, SignInWithIdTokenRequest,
    StartOidcSignInRequest, StartOidcSignInResponse, UnlinkIdentityRequest,
};
use fabula_runtime::{
    auth::Caller,
    errors::{self, FieldViolations},
    rules::{self, accounts as declared},
};
use fabula_store::error::{Result, denied};
use tonic::Code;
use uuid::Uuid;

use super::{
    flows,
    provider::{IdClaims, Provider},
    store,
};
use crate::accounts::{
    AccountsApi, passwords::NO_PASSWORD, sessions, signin::user_disabled, users, users::Account, validate,
};

/// A username made from what the provider says of the person: letters, digits, `_`
/// and `-` of their preferred username, name or email's local part, at most 40.
fn username_base(claims: &IdClaims) -> String {
    let local_part = claims.email.as_deref().and_then(|email| email.split('@').next());
    let sources = [claims.preferred_username.as_deref(), claims.name.as_deref(), local_part];
    let handle = |text: &str| -> String {
        let kept = text.chars().filter_map(|c| match c {
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => Some(c),
            ' ' | '.' => Some('_'),
            _ => None,
        });
        kept.take(40).collect::<String>().trim_matches(['_', '-']).to_owned()
    };
    let base = sources.into_iter().flatten().map(handle).find(|h| validate::username(h).is_ok());
    base.unwrap_or_else(|| "user".into())
}

impl AccountsApi {
    pub(in crate::accounts) async fn start_flow(
        &self,
        caller: &Caller,
        request: StartOidcSignInRequest,
    ) -> Result<StartOidcSignInResponse> {
        rules::text(&request.provider, &declared::start_oidc_sign_in_request::PROVIDER)
            .map_err(|e| fabula_store::error::invalid("provider", e))?;
        let provider = self.0.oidc.get(&request.provider)?;
        let link_user_id = if request.link { Some(caller.require_user()?.user_id) } else { None };
        let started = flows::start(&self.0.db, &provider.settings.name, link_user_id).await?;
        let authorization_url = provider.authorization_url(&started.state, &started.nonce, &started.challenge).await?;
        Ok(StartOidcSignInResponse { authorization_url, state: started.state })
    }

    pub(in crate::accounts) async fn finish_flow(
        &self,
        caller: &Caller,
        request: FinishOidcSignInRequest,
    ) -> Result<AuthResponse> {
        let mut violations = FieldViolations::new();
        violations.check("provider", rules::text(&request.provider, &declared::finish_oidc_sign_in_request::PROVIDER));
        violations.check("code", rules::text(&request.code, &declared::finish_oidc_sign_in_request::CODE));
        violations.check("state", rules::text(&request.state, &declared::finish_oidc_sign_in_request::STATE));
        violations.finish()?;
        let provider = self.0.oidc.get(&request.provider)?;
        let flow = flows::consume(&self.0.db, &provider.settings.name, &request.state).await?;
        if flow.link_user_id.is_some_and(|linking| caller.user_id() != Some(linking)) {
            return Err(denied("this link was started by another account; sign in to it to finish"));
        }
        let id_token = provider.exchange(&request.code, &flow.verifier).await?;
        let claims = provider.verify(&id_token, Some(&flow.nonce)).await?;
        let account = match flow.link_user_id {
            Some(user_id) => {
                self.link_to(user_id, provider, &claims).await?;
                users::fetch_account(&self.0.db.reader, user_id).await?
            }
            None => self.account_of(provider, &claims).await?,
        };
        self.start_session(&account).await
    }

    pub(in crate::accounts) async fn sign_in_with_token(
        &self,
        request: SignInWithIdTokenRequest,
    ) -> Result<AuthResponse> {
        let mut violations = FieldViolations::new();
        violations
            .check("provider", rules::text(&request.provider, &declared::sign_in_with_id_token_request::PROVIDER));
        violations
            .check("id_token", rules::text(&request.id_token, &declared::sign_in_with_id_token_request::ID_TOKEN));
        violations.check("nonce", rules::text(&request.nonce, &declared::sign_in_with_id_token_request::NONCE));
        violations.finish()?;
        let provider = self.0.oidc.get(&request.provider)?;
        let nonce = Some(request.nonce.as_str()).filter(|n| !n.is_empty());
        let claims = provider.verify(&request.id_token, nonce).await?;
        let account = self.account_of(provider, &claims).await?;
        self.start_session(&account).await
    }

    pub(in crate::accounts) async fn link_with_token(
        &self,
        caller: &Caller,
        request: LinkIdentityRequest,
    ) -> Result<Identity> {
        let user_id = caller.require_user()?.user_id;
        let mut violations = FieldViolations::new();
        violations.check("provider", rules::text(&request.provider, &declared::link_identity_request::PROVIDER));
        violations.check("id_token", rules::text(&request.id_token, &declared::link_identity_request::ID_TOKEN));
        violations.check("nonce", rules::text(&request.nonce, &declared::link_identity_request::NONCE));
        violations.finish()?;
        let provider = self.0.oidc.get(&request.provider)?;
        let nonce = Some(request.nonce.as_str()).filter(|n| !n.is_empty());
        let claims = provider.verify(&request.id_token, nonce).await?;
        self.link_to(user_id, provider, &claims).await
    }

    pub(in crate::accounts) async fn unlink(&self, caller: &Caller, request: UnlinkIdentityRequest) -> Result<()> {
        let user_id = caller.require_user()?.user_id;
        rules::text(&request.id, &declared::unlink_identity_request::ID)
            .map_err(|e| fabula_store::error::invalid("id", e))?;
        let mut tx = self.0.db.begin().await?;
        store::unlink(&mut tx, user_id, &request.id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Links the identity of `claims` to user `user_id`; linking it again is no change.
    async fn link_to(&self, user_id: Uuid, provider: &Provider, claims: &IdClaims) -> Result<Identity> {
        let name = &provider.settings.name;
        match store::find(&self.0.db.reader, name, &claims.sub).await? {
            Some(linked) if linked.user_id == user_id => return Ok(linked.identity),
            Some(_) => return Err(store::identity_taken()),
            None => {}
        }
        let mut tx = self.0.db.begin().await?;
        let email = claims.email.as_deref().unwrap_or_default();
        let identity = store::link(&mut tx, user_id, name, &claims.sub, email).await?;
        tx.commit().await?;
        tracing::info!(%user_id, provider = %name, "identity linked");
        Ok(identity)
    }

    /// The account the identity signs in to, created at its first sign-in.
    async fn account_of(&self, provider: &Provider, claims: &IdClaims) -> Result<Account> {
        match store::find(&self.0.db.reader, &provider.settings.name, &claims.sub).await? {
            Some(linked) => users::fetch_account(&self.0.db.reader, linked.user_id).await,
            None => self.create_account(provider, claims).await,
        }
    }

    /// A new account without a password for a first sign-in, with the identity linked.
    async fn create_account(&self, provider: &Provider, claims: &IdClaims) -> Result<Account> {
        let email = claims.verified_email().and_then(|email| validate::email(email).ok()).ok_or_else(|| {
            let message = "the provider gave no verified email address, which a new account needs";
            errors::status(Code::FailedPrecondition, "EMAIL_NOT_VERIFIED", message)
        })?;
        if users::find_by_login(&self.0.db.reader, &email).await?.is_some() {
            let message = "an account with this email address exists: sign in to it and link this identity";
            return Err(errors::status(Code::FailedPrecondition, "IDENTITY_NOT_LINKED", message).into());
        }
        let username = self.free_username(&username_base(claims)).await?;
        let account = users::NewAccount {
            username: &username,
            email: &email,
            password_hash: NO_PASSWORD,
            role: Role::User,
            gpt_enabled: false,
        };
        let mut tx = self.0.db.begin().await?;
        let account = users::insert_account(&mut tx, account).await?;
        store::link(&mut tx, account.id, &provider.settings.name, &claims.sub, &email).await?;
        tx.commit().await?;
        tracing::info!(user_id = %account.id, provider = %provider.settings.name, "account created by a sign-in");
        Ok(account)
    }

    /// `base`, or `base-2` … `base-9`, or `base-` and random hex: the first that is free.
    async fn free_username(&self, base: &str) -> Result<String> {
        let numbered = (2..10).map(|n| format!("{base}-{n}"));
        let random = format!("{base}-{}", &Uuid::new_v4().simple().to_string()[..8]);
        for candidate in std::iter::once(base.to_owned()).chain(numbered).chain([random]) {
            let taken = sqlx::query("SELECT 1 FROM users WHERE username_key = $1")
                .bind(validate::key(&candidate))
                .fetch_optional(&self.0.db.reader)
                .await?;
            if taken.is_none() {
                return Ok(candidate);
            }
        }
        Ok(format!("user-{}", Uuid::new_v4().simple()))
    }

    /// Fabula's own tokens for `account`, unless it is disabled.
    async fn start_session(&self, account: &Account) -> Result<AuthResponse> {
        if account.disabled {
            return Err(user_disabled());
        }
        let mut tx = self.0.db.begin().await?;
        let refresh_token = sessions::start(&mut tx, account.id, self.0.settings.refresh_token_ttl).await?;
        tx.commit().await?;
        Ok(self.signed_in(account, refresh_token))
    }
}
