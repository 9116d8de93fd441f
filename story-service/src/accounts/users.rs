//! The `users` table: rows as [`Account`]s, and the queries the account API runs.
//! Usernames and email addresses are unique by their lowercase `*_key` columns.

use fabula_contracts::pb::accounts::{Role, User};
use fabula_runtime::errors;
use fabula_store::{
    db::{flag, now_micros, timestamp},
    error::{Error, Result, is_unique_violation, not_found},
};
use sqlx::{Any, Executor, Row, Transaction, any::AnyRow};
use tonic::Code;
use uuid::Uuid;

use super::validate::key;

/// The columns [`account_from_row`] reads, in order.
pub const COLUMNS: &str = "id, username, email, display_name, role, gpt_enabled, disabled, create_time";

/// A user as stored, without secrets.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub gpt_enabled: bool,
    pub disabled: bool,
    pub create_time: i64,
}

impl Account {
    pub fn to_proto(&self) -> User {
        User {
            id: self.id.to_string(),
            username: self.username.clone(),
            email: self.email.clone(),
            display_name: self.display_name.clone(),
            role: self.role.into(),
            gpt_enabled: self.gpt_enabled,
            disabled: self.disabled,
            create_time: Some(timestamp(self.create_time)),
        }
    }
}

/// A new account, validated.
pub struct NewAccount<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub gpt_enabled: bool,
}

/// Reads the [`COLUMNS`] of a row.
pub fn account_from_row(row: &AnyRow) -> Result<Account> {
    let id: String = row.try_get(0)?;
    Ok(Account {
        id: Uuid::try_parse(&id).map_err(|_| Error::Internal(format!("user id {id:?} is not a UUID")))?,
        username: row.try_get(1)?,
        email: row.try_get(2)?,
        display_name: row.try_get(3)?,
        role: Role::from_str_name(&row.try_get::<String, _>(4)?).unwrap_or(Role::User),
        gpt_enabled: row.try_get::<i64, _>(5)? != 0,
        disabled: row.try_get::<i64, _>(6)? != 0,
        create_time: row.try_get(7)?,
    })
}

/// User `id`, or NOT_FOUND.
pub async fn fetch_account<'e>(executor: impl Executor<'e, Database = Any>, id: Uuid) -> Result<Account> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_string()).fetch_optional(executor).await?;
    account_from_row(&row.ok_or_else(|| not_found("user"))?)
}

/// The user who signs in as `login` (a username, or an email address when it has
/// an `@`), with their password hash.
pub async fn find_by_login<'e>(
    executor: impl Executor<'e, Database = Any>,
    login: &str,
) -> Result<Option<(Account, String)>> {
    let column = if login.contains('@') { "email_key" } else { "username_key" };
    let sql = format!("SELECT {COLUMNS}, password_hash FROM users WHERE {column} = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(key(login.trim())).fetch_optional(executor).await?;
    row.map(|row| Ok((account_from_row(&row)?, row.try_get(8)?))).transpose()
}

/// The password hash of user `id`, or NOT_FOUND.
pub async fn password_hash_of<'e>(executor: impl Executor<'e, Database = Any>, id: Uuid) -> Result<String> {
    let row = sqlx::query("SELECT password_hash FROM users WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(executor)
        .await?
        .ok_or_else(|| not_found("user"))?;
    Ok(row.try_get(0)?)
}

/// ALREADY_EXISTS when another user than `except` has `username` or `email`
/// (ignoring case); `None` for a value not to check.
pub async fn check_unclaimed<'e>(
    executor: impl Executor<'e, Database = Any>,
    username: Option<&str>,
    email: Option<&str>,
    except: Option<Uuid>,
) -> Result<()> {
    let (username_key, email_key) = (username.map(key).unwrap_or_default(), email.map(key).unwrap_or_default());
    let holders =
        sqlx::query("SELECT username_key FROM users WHERE (username_key = $1 OR email_key = $2) AND id <> $3 LIMIT 2")
            .bind(&username_key)
            .bind(&email_key)
            .bind(except.map(|id| id.to_string()).unwrap_or_default())
            .fetch_all(executor)
            .await?;
    if holders.is_empty() {
        return Ok(());
    }
    for holder in &holders {
        if username.is_some() && holder.try_get::<String, _>(0)? == username_key {
            return Err(username_taken());
        }
    }
    Err(email_taken())
}

fn username_taken() -> Error {
    errors::status(Code::AlreadyExists, "USERNAME_TAKEN", "this username is taken").into()
}

fn email_taken() -> Error {
    errors::status(Code::AlreadyExists, "EMAIL_TAKEN", "an account with this email address exists already").into()
}

/// Inserts `account`, or ALREADY_EXISTS when its username or email is taken.
pub async fn insert_account(tx: &mut Transaction<'static, Any>, account: NewAccount<'_>) -> Result<Account> {
    check_unclaimed(&mut **tx, Some(account.username), Some(account.email), None).await?;
    let (id, now) = (Uuid::now_v7(), now_micros());
    sqlx::query(
        "INSERT INTO users (id, username, username_key, email, email_key, display_name, password_hash, role, \
         gpt_enabled, create_time, update_time) VALUES ($1, $2, $3, $4, $5, $2, $6, $7, $8, $9, $9)",
    )
    .bind(id.to_string())
    .bind(account.username)
    .bind(key(account.username))
    .bind(account.email)
    .bind(key(account.email))
    .bind(account.password_hash)
    .bind(account.role.as_str_name())
    .bind(i64::from(account.gpt_enabled))
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(|e| if is_unique_violation(&e) { taken_column_of(&e) } else { e.into() })?;
    fetch_account(&mut **tx, id).await
}

/// Which unique column a concurrent insert or update collided on.
fn taken_column_of(error: &sqlx::Error) -> Error {
    if error.to_string().contains("username_key") { username_taken() } else { email_taken() }
}

/// Sets the display name and email address of user `id`; ALREADY_EXISTS when the
/// email address belongs to someone else.
pub async fn update_profile(
    tx: &mut Transaction<'static, Any>,
    id: Uuid,
    display_name: &str,
    email: &str,
) -> Result<Account> {
    check_unclaimed(&mut **tx, None, Some(email), Some(id)).await?;
    sqlx::query("UPDATE users SET display_name = $1, email = $2, email_key = $3, update_time = $4 WHERE id = $5")
        .bind(display_name)
        .bind(email)
        .bind(key(email))
        .bind(now_micros())
        .bind(id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { email_taken() } else { e.into() })?;
    fetch_account(&mut **tx, id).await
}

/// Sets what an administrator controls of user `id`.
pub async fn update_standing(tx: &mut Transaction<'static, Any>, account: &Account) -> Result<Account> {
    sqlx::query("UPDATE users SET role = $1, gpt_enabled = $2, disabled = $3, update_time = $4 WHERE id = $5")
        .bind(account.role.as_str_name())
        .bind(flag(account.gpt_enabled))
        .bind(flag(account.disabled))
        .bind(now_micros())
        .bind(account.id.to_string())
        .execute(&mut **tx)
        .await?;
    fetch_account(&mut **tx, account.id).await
}

/// Replaces the password of user `id` and refuses every access token issued before
/// this instant (`tokens_valid_after_ms`, to the millisecond like a token's `iat`).
pub async fn set_password(tx: &mut Transaction<'static, Any>, id: Uuid, password_hash: &str) -> Result<()> {
    sqlx::query(
        "UPDATE users SET password_hash = $1, tokens_valid_after_ms = $2, \
         update_time = $3 WHERE id = $4",
    )
    .bind(password_hash)
    .bind(fabula_runtime::token::unix_now_millis())
    .bind(now_micros())
    .bind(id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
