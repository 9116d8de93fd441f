//! ListUsers and UpdateUser, for administrators, and [`ensure_admin`], which makes
//! the configured administrator exist at start.
//!
//! An administrator may not disable or demote themselves (PERMISSION_DENIED,
//! SELF_LOCKOUT), which
//! also means there is always one administrator left. Disabling a user revokes
//! their refresh tokens and drops them from the authenticator's cache, so their
//! access tokens stop working within a second on every replica.

use fabula_contracts::pb::accounts::{ListUsersRequest, ListUsersResponse, Role, UpdateUserRequest, User};
use fabula_runtime::{
    auth::Caller,
    config::Secret,
    errors::{self, FieldViolations},
    rules,
};
use fabula_store::{
    db::{Db, now_micros},
    error::{Error, Result, invalid},
    filter,
    pagination::{Bind, Key, Listing, Page, Sql},
};
use sqlx::Row;
use tonic::Code;
use uuid::Uuid;

use super::{
    AccountsApi, passwords, sessions,
    users::{self, Account, COLUMNS, NewAccount, account_from_row},
    validate,
};
use crate::{BuildError, Settings, domain, update::Mask};

/// What an administrator may change of an account.
const STANDING_FIELDS: &[&str] = rules::accounts::update_user_request::UPDATE_MASK.paths;
const LISTING: Listing = Listing {
    page_size: &rules::accounts::list_users_request::PAGE_SIZE,
    page_token: &rules::accounts::list_users_request::PAGE_TOKEN,
    filter: &rules::accounts::list_users_request::FILTER,
    columns: &[("role", "role"), ("disabled", "disabled"), ("gpt_enabled", "gpt_enabled")],
};

/// The caller's id when they are an administrator, else PERMISSION_DENIED. The auth
/// layer refuses others already; this keeps the handler safe on its own.
pub(crate) fn require_admin(caller: &Caller) -> Result<Uuid> {
    let principal = caller.require_user()?;
    if !principal.is_admin() {
        return Err(errors::status(Code::PermissionDenied, "ADMIN_ONLY", "this call is for administrators").into());
    }
    Ok(principal.user_id)
}

impl AccountsApi {
    pub(super) async fn list_accounts(&self, caller: Caller, request: ListUsersRequest) -> Result<ListUsersResponse> {
        require_admin(&caller)?;
        let page = Page::parse(request.page_size, &request.page_token, &LISTING, &["ListUsers", &request.filter])?;
        let mut condition = Sql::new(" WHERE 1 = 1");
        filter::apply(&request.filter, &LISTING, &mut condition)?;
        let count = Sql::select("SELECT COUNT(*) FROM users", &condition);
        let mut select = Sql::select(&format!("SELECT {COLUMNS} FROM users"), &condition);
        if let Some(after) = page.after_like(&[Key::Text(String::new())])? {
            select.push_after(&["id"], after);
        }
        select.push(" ORDER BY id LIMIT ").bind(Bind::Int(page.fetch_limit()));

        let total: i64 = count.query().fetch_one(&self.0.db.reader).await?.try_get(0)?;
        let rows = select.query().fetch_all(&self.0.db.reader).await?;
        let accounts = rows.iter().map(account_from_row).collect::<Result<Vec<_>>>()?;
        let (accounts, next_page_token) = page.finish(accounts, |a| vec![Key::Text(a.id.to_string())]);
        let users = accounts.iter().map(Account::to_proto).collect();
        Ok(ListUsersResponse { users, next_page_token, total_size: i32::try_from(total).unwrap_or(i32::MAX) })
    }

    pub(super) async fn update_account(&self, caller: Caller, request: UpdateUserRequest) -> Result<User> {
        let admin = require_admin(&caller)?;
        let change = StandingChange::parse(request)?;
        if change.id == admin && change.locks_out() {
            return Err(errors::status(
                Code::PermissionDenied,
                "SELF_LOCKOUT",
                "administrators cannot disable or demote themselves; ask another administrator",
            )
            .into());
        }
        let mut tx = self.0.db.begin().await?;
        let current = users::fetch_account(&mut *tx, change.id).await?;
        let updated = users::update_standing(&mut tx, &change.apply(current)).await?;
        if updated.disabled {
            sessions::revoke_all_of(&mut *tx, updated.id).await?;
        }
        tx.commit().await?;
        self.0.authn.forget(updated.id);
        tracing::info!(user_id = %updated.id, by = %admin, role = updated.role.as_str_name(),
            disabled = updated.disabled, gpt_enabled = updated.gpt_enabled, "account changed by an administrator");
        Ok(updated.to_proto())
    }
}

/// What an administrator asked to change of an account, validated; `None` is "keep".
struct StandingChange {
    id: Uuid,
    role: Option<Role>,
    gpt_enabled: Option<bool>,
    disabled: Option<bool>,
}

impl StandingChange {
    fn parse(request: UpdateUserRequest) -> Result<Self> {
        let user = request.user.ok_or_else(|| invalid("user", "is required"))?;
        // With no mask, the populated fields change, and a proto3 `false` is not
        // populated: enabling a user again or taking model access away needs a mask
        // naming `disabled` or `gpt_enabled`.
        let mut violations = FieldViolations::new();
        let id = violations.check("user.id", domain::id(&user.id));
        let mask = Mask::parse(
            request.update_mask.as_ref(),
            STANDING_FIELDS,
            |path| match path {
                "role" => user.role != Role::Unspecified as i32,
                "gpt_enabled" => user.gpt_enabled,
                "disabled" => user.disabled,
                _ => false,
            },
            &mut violations,
        );
        let role = mask.has("role").then(|| violations.check("user.role", validate::role(user.role))).flatten();
        violations.finish()?;
        Ok(Self {
            id: id.unwrap_or_default(),
            role,
            gpt_enabled: mask.has("gpt_enabled").then_some(user.gpt_enabled),
            disabled: mask.has("disabled").then_some(user.disabled),
        })
    }

    /// Whether the change would take an administrator's own access away.
    fn locks_out(&self) -> bool {
        self.disabled == Some(true) || self.role.is_some_and(|role| role != Role::Admin)
    }

    fn apply(&self, current: Account) -> Account {
        Account {
            role: self.role.unwrap_or(current.role),
            gpt_enabled: self.gpt_enabled.unwrap_or(current.gpt_enabled),
            disabled: self.disabled.unwrap_or(current.disabled),
            ..current
        }
    }
}

/// Makes the administrator of `settings` exist when one is configured: creates it
/// (role ADMIN, with the configured email address) when missing, or makes the
/// existing account an enabled ADMIN again; its password is never reset. Also
/// starts making the dummy password hash, so the first unknown login is not slow.
pub async fn ensure_admin(db: &Db, settings: &Settings) -> Result<(), BuildError> {
    passwords::warm_up();
    // An empty username counts as none: deployments pass `FABULA_ADMIN_USERNAME=` through.
    let (Some(username), Some(password)) = (&settings.admin_username, &settings.admin_password) else {
        return Ok(());
    };
    if username.is_empty() {
        return Ok(());
    }
    let username = validate::username(username).map_err(|e| BuildError::Admin(format!("the username {e}")))?;
    validate::password(password.expose()).map_err(|e| BuildError::Admin(format!("the password {e}")))?;
    let email =
        validate::email(&settings.admin_email).map_err(|e| BuildError::Admin(format!("the email address {e}")))?;
    let email = email.as_str();
    create_or_promote_admin(db, &username, password, email).await.map_err(|e| match e {
        Error::Database { source, .. } => BuildError::Database(source),
        other => BuildError::Admin(other.to_string()),
    })
}

async fn create_or_promote_admin(db: &Db, username: &str, password: &Secret, email: &str) -> Result<()> {
    if promote_admin(db, username).await? {
        return Ok(());
    }
    let password_hash = passwords::hash(password.expose().to_owned()).await?;
    // The configured administrator may use the model from the start: with the one-command
    // stack, that is how one tries the AI co-writer without granting anything first.
    let admin = NewAccount { username, email, password_hash: &password_hash, role: Role::Admin, gpt_enabled: true };
    let mut tx = db.begin().await?;
    match users::insert_account(&mut tx, admin).await {
        Ok(account) => {
            tx.commit().await?;
            tracing::info!(user_id = %account.id, username, "administrator created");
            Ok(())
        }
        // Another replica starting at the same time may have created it first.
        Err(error) => {
            drop(tx);
            if promote_admin(db, username).await? { Ok(()) } else { Err(error) }
        }
    }
}

/// Makes user `username` an enabled ADMIN; `false` when there is no such user.
async fn promote_admin(db: &Db, username: &str) -> Result<bool> {
    let row = sqlx::query("SELECT id, role, disabled FROM users WHERE username_key = $1")
        .bind(validate::key(username))
        .fetch_optional(&db.writer)
        .await?;
    let Some(row) = row else { return Ok(false) };
    let (id, role, disabled): (String, String, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    if role != Role::Admin.as_str_name() || disabled != 0 {
        sqlx::query("UPDATE users SET role = $1, disabled = 0, update_time = $2 WHERE id = $3")
            .bind(Role::Admin.as_str_name())
            .bind(now_micros())
            .bind(&id)
            .execute(&db.writer)
            .await?;
        tracing::info!(user_id = %id, "configured administrator made an enabled ADMIN again");
    }
    Ok(true)
}
