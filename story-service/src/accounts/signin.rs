//! Register, Login, RefreshToken and Logout: the public calls that start and end
//! sessions.
//!
//! A login with an unknown name and one with a wrong password fail alike
//! (INVALID_CREDENTIALS) and take about as long: an unknown name is checked
//! against a dummy hash. A disabled account is told USER_DISABLED, but only after
//! its password was right, so the answer tells nothing to someone guessing.

use fabula_contracts::pb::accounts::{
    AuthResponse, LoginRequest, LogoutRequest, RefreshTokenRequest, RegisterRequest, Role,
};
use fabula_runtime::{auth::unauthenticated, errors::FieldViolations, rules};
use fabula_store::error::{Error, Result, invalid};

use super::{
    AccountsApi, passwords, sessions,
    throttle::{self, Target},
    users::{self, NewAccount},
    validate,
};

fn invalid_credentials() -> Error {
    unauthenticated("INVALID_CREDENTIALS", "the login or the password is wrong").into()
}

pub(super) fn user_disabled() -> Error {
    unauthenticated("USER_DISABLED", "this account is disabled").into()
}

impl AccountsApi {
    pub(super) async fn register_account(&self, request: RegisterRequest) -> Result<AuthResponse> {
        let mut violations = FieldViolations::new();
        let username = violations.check("username", validate::username(&request.username));
        let email = violations.check("email", validate::email(&request.email));
        violations.check("password", validate::password(&request.password));
        violations.finish()?;
        let (username, email) = (username.unwrap_or_default(), email.unwrap_or_default());
        // Checked before hashing, so a taken name costs no hash; checked again on insert.
        users::check_unclaimed(&self.0.db.reader, Some(&username), Some(&email), None).await?;
        let password_hash = passwords::hash(request.password).await?;
        let account = NewAccount {
            username: &username,
            email: &email,
            password_hash: &password_hash,
            role: Role::User,
            gpt_enabled: false,
        };
        let mut tx = self.0.db.begin().await?;
        let account = users::insert_account(&mut tx, account).await?;
        let refresh_token = sessions::start(&mut tx, account.id, self.0.settings.refresh_token_ttl).await?;
        tx.commit().await?;
        tracing::info!(user_id = %account.id, "account registered");
        Ok(self.signed_in(&account, refresh_token))
    }

    pub(super) async fn sign_in(&self, request: LoginRequest) -> Result<AuthResponse> {
        let mut violations = FieldViolations::new();
        violations.check("login", rules::text(&request.login, &rules::accounts::login_request::LOGIN));
        violations.check("password", rules::text(&request.password, &rules::accounts::login_request::PASSWORD));
        violations.finish()?;
        let Some((account, stored)) = users::find_by_login(&self.0.db.reader, &request.login).await? else {
            // Counted, locked and checked like a known login, so that nothing tells them apart.
            let login = validate::key(request.login.trim());
            throttle::claim_attempt(&self.0.db, &Target::Unknown(&login)).await?;
            passwords::verify(request.password, None).await?;
            return Err(invalid_credentials());
        };
        throttle::claim_attempt(&self.0.db, &Target::Account(account.id)).await?;
        if !passwords::verify(request.password, Some(stored)).await? {
            tracing::info!(user_id = %account.id, "sign-in with a wrong password");
            return Err(invalid_credentials());
        }
        let mut tx = self.0.db.begin().await?;
        throttle::clear_failures(&mut *tx, account.id).await?;
        if account.disabled {
            tx.commit().await?;
            return Err(user_disabled());
        }
        let refresh_token = sessions::start(&mut tx, account.id, self.0.settings.refresh_token_ttl).await?;
        tx.commit().await?;
        Ok(self.signed_in(&account, refresh_token))
    }

    pub(super) async fn refresh_session(&self, request: RefreshTokenRequest) -> Result<AuthResponse> {
        let declared = &rules::accounts::refresh_token_request::REFRESH_TOKEN;
        rules::text(&request.refresh_token, declared).map_err(|e| invalid("refresh_token", e))?;
        let ttl = self.0.settings.refresh_token_ttl;
        let (user_id, refresh_token) = sessions::rotate(&self.0.db, &request.refresh_token, ttl).await?;
        let account = users::fetch_account(&self.0.db.reader, user_id).await?;
        Ok(self.signed_in(&account, refresh_token))
    }

    /// Revokes the token's family; an unknown or revoked token is signed out already.
    pub(super) async fn sign_out(&self, request: LogoutRequest) -> Result<()> {
        let declared = &rules::accounts::logout_request::REFRESH_TOKEN;
        rules::text(&request.refresh_token, declared).map_err(|e| invalid("refresh_token", e))?;
        sessions::revoke_family_of(&self.0.db.writer, &request.refresh_token).await
    }
}
