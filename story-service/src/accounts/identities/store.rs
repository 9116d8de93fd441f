//! The `user_identities` table: which account each provider identity signs in to.
//! An identity (provider, subject) belongs to one account at most.

use fabula_contracts::pb::accounts::Identity;
use fabula_runtime::errors;
use fabula_store::{
    db::{now_micros, timestamp},
    error::{Error, Result, is_unique_violation, not_found},
};
use sqlx::{Any, Executor, Row, Transaction, any::AnyRow};
use tonic::Code;
use uuid::Uuid;

use crate::accounts::passwords::NO_PASSWORD;

const COLUMNS: &str = "id, user_id, provider, subject, email, create_time";

/// A linked identity.
pub struct Linked {
    pub user_id: Uuid,
    pub identity: Identity,
}

fn uuid(text: &str) -> Result<Uuid> {
    Uuid::try_parse(text).map_err(|_| Error::Internal(format!("identity column {text:?} is no UUID")))
}

fn linked_from_row(row: &AnyRow) -> Result<Linked> {
    let (id, user_id): (String, String) = (row.try_get(0)?, row.try_get(1)?);
    let identity = Identity {
        id,
        provider: row.try_get(2)?,
        subject: row.try_get(3)?,
        email: row.try_get(4)?,
        create_time: Some(timestamp(row.try_get(5)?)),
    };
    Ok(Linked { user_id: uuid(&user_id)?, identity })
}

/// The identity `subject` at `provider`, if it is linked.
pub async fn find<'e>(
    executor: impl Executor<'e, Database = Any>,
    provider: &str,
    subject: &str,
) -> Result<Option<Linked>> {
    let sql = format!("SELECT {COLUMNS} FROM user_identities WHERE provider = $1 AND subject = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(provider).bind(subject).fetch_optional(executor).await?;
    row.as_ref().map(linked_from_row).transpose()
}

/// The identities of user `user_id`, oldest first.
pub async fn list_of<'e>(executor: impl Executor<'e, Database = Any>, user_id: Uuid) -> Result<Vec<Identity>> {
    let sql = format!("SELECT {COLUMNS} FROM user_identities WHERE user_id = $1 ORDER BY create_time, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id.to_string()).fetch_all(executor).await?;
    rows.iter().map(|row| Ok(linked_from_row(row)?.identity)).collect()
}

/// Links `subject` at `provider` to user `user_id`; ALREADY_EXISTS (IDENTITY_TAKEN)
/// when an account has it already.
pub async fn link(
    tx: &mut Transaction<'static, Any>,
    user_id: Uuid,
    provider: &str,
    subject: &str,
    email: &str,
) -> Result<Identity> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO user_identities (id, user_id, provider, subject, email, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id.to_string())
    .bind(user_id.to_string())
    .bind(provider)
    .bind(subject)
    .bind(email)
    .bind(now_micros())
    .execute(&mut **tx)
    .await
    .map_err(|e| if is_unique_violation(&e) { identity_taken() } else { e.into() })?;
    let linked = find(&mut **tx, provider, subject).await?;
    Ok(linked.ok_or_else(|| Error::Internal("a linked identity vanished".into()))?.identity)
}

/// ALREADY_EXISTS: the identity signs in to another account.
pub fn identity_taken() -> Error {
    let message = "this identity is linked to another account";
    errors::status(Code::AlreadyExists, "IDENTITY_TAKEN", message).into()
}

/// Unlinks identity `id` of user `user_id` (NOT_FOUND for anyone else's), unless it
/// is their last way to sign in: FAILED_PRECONDITION (LAST_SIGN_IN_METHOD). The
/// user's row is written first, so two unlinks of one account run one after the other.
pub async fn unlink(tx: &mut Transaction<'static, Any>, user_id: Uuid, id: &str) -> Result<()> {
    let user = user_id.to_string();
    let row = sqlx::query("UPDATE users SET update_time = $1 WHERE id = $2 RETURNING password_hash")
        .bind(now_micros())
        .bind(&user)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| not_found("user"))?;
    let has_password = row.try_get::<String, _>(0)? != NO_PASSWORD;
    let identities = sqlx::query("SELECT id FROM user_identities WHERE user_id = $1")
        .bind(&user)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>(0))
        .collect::<Result<Vec<_>, _>>()?;
    if !identities.iter().any(|linked| linked == id) {
        return Err(not_found("identity"));
    }
    if !has_password && identities.len() == 1 {
        let message = "this identity is your only way to sign in; link another identity first";
        return Err(errors::status(Code::FailedPrecondition, "LAST_SIGN_IN_METHOD", message).into());
    }
    sqlx::query("DELETE FROM user_identities WHERE id = $1").bind(id).execute(&mut **tx).await?;
    Ok(())
}
