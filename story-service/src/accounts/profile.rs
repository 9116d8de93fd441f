//! GetMe, UpdateMe and ChangePassword: the signed-in user's own account.
//!
//! Changing the password ends every session, the caller's included: all refresh
//! tokens are revoked and access tokens issued before the current second are
//! refused. A wrong current password is PERMISSION_DENIED (WRONG_PASSWORD) and
//! counts towards the account's lock like a failed sign-in, so a stolen access
//! token cannot be used to guess the password quickly.

use fabula_contracts::pb::accounts::{ChangePasswordRequest, UpdateMeRequest, User};
use fabula_runtime::{
    auth::Caller,
    errors::{self, FieldViolations},
    rules,
};
use fabula_store::error::{Result, invalid};
use tonic::Code;

use super::{
    AccountsApi, passwords, sessions,
    throttle::{self, Target},
    users, validate,
};
use crate::update::Mask;

/// What a user may change of their own account.
const PROFILE_FIELDS: &[&str] = rules::accounts::update_me_request::UPDATE_MASK.paths;

impl AccountsApi {
    pub(super) async fn me(&self, caller: Caller) -> Result<User> {
        let me = caller.require_user()?.user_id;
        Ok(users::fetch_account(&self.0.db.reader, me).await?.to_proto())
    }

    pub(super) async fn update_profile(&self, caller: Caller, request: UpdateMeRequest) -> Result<User> {
        let me = caller.require_user()?.user_id;
        let user = request.user.ok_or_else(|| invalid("user", "is required"))?;
        let mut violations = FieldViolations::new();
        let mask = Mask::parse(
            request.update_mask.as_ref(),
            PROFILE_FIELDS,
            |path| match path {
                "display_name" => !user.display_name.is_empty(),
                "email" => !user.email.is_empty(),
                _ => false,
            },
            &mut violations,
        );
        let display_name = mask
            .has("display_name")
            .then(|| violations.check("user.display_name", validate::display_name(&user.display_name)))
            .flatten();
        let email = mask.has("email").then(|| violations.check("user.email", validate::email(&user.email))).flatten();
        violations.finish()?;
        if mask.is_empty() {
            return self.me(caller).await;
        }
        let mut tx = self.0.db.begin().await?;
        let current = users::fetch_account(&mut *tx, me).await?;
        let display_name = display_name.unwrap_or(current.display_name);
        let email = email.unwrap_or(current.email);
        let updated = users::update_profile(&mut tx, me, &display_name, &email).await?;
        tx.commit().await?;
        Ok(updated.to_proto())
    }

    pub(super) async fn replace_password(&self, caller: Caller, request: ChangePasswordRequest) -> Result<()> {
        let me = caller.require_user()?.user_id;
        let mut violations = FieldViolations::new();
        violations.check(
            "current_password",
            rules::text(&request.current_password, &rules::accounts::change_password_request::CURRENT_PASSWORD),
        );
        violations.check("new_password", validate::password(&request.new_password));
        violations.finish()?;
        let stored = users::password_hash_of(&self.0.db.reader, me).await?;
        throttle::claim_attempt(&self.0.db, &Target::Account(me)).await?;
        if !passwords::verify(request.current_password, Some(stored)).await? {
            return Err(
                errors::status(Code::PermissionDenied, "WRONG_PASSWORD", "the current password is wrong").into()
            );
        }
        let new_hash = passwords::hash(request.new_password).await?;
        let mut tx = self.0.db.begin().await?;
        users::set_password(&mut tx, me, &new_hash).await?;
        throttle::clear_failures(&mut *tx, me).await?;
        sessions::revoke_all_of(&mut *tx, me).await?;
        tx.commit().await?;
        self.0.authn.forget(me);
        tracing::info!(user_id = %me, "password changed; every session ended");
        Ok(())
    }
}
