//! Refresh tokens: 32 random bytes, base64url, prefixed `rt_`; only their SHA-256
//! is stored. Each sign-in starts a family; a refresh uses its token up and hands
//! out the next one of the same family. A token presented twice means it leaked,
//! so the whole family is revoked and the caller must sign in again.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use fabula_runtime::auth::unauthenticated;
use sha2::{Digest, Sha256};
use sqlx::{Any, Executor, Row, Transaction};
use uuid::Uuid;

use fabula_store::{
    db::{Db, now_micros},
    error::{Error, Result},
};

/// What every refresh token starts with, so it is told apart from an access token.
const PREFIX: &str = "rt_";

/// The stored form of a refresh token: its SHA-256, in hex.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh random refresh token.
fn mint() -> String {
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
}

/// `now` plus `ttl`, in stored microseconds.
fn expiry(now: i64, ttl: Duration) -> i64 {
    now.saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX))
}

/// Stores a new token of `family` for `user_id` and returns it.
async fn issue(tx: &mut Transaction<'static, Any>, user_id: Uuid, family: &str, ttl: Duration) -> Result<String> {
    let token = mint();
    let now = now_micros();
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at, create_time) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash_token(&token))
    .bind(family)
    .bind(user_id.to_string())
    .bind(expiry(now, ttl))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(token)
}

/// Starts a session for `user_id`: the first token of a new family. Drops the
/// user's tokens that expired, which nothing can use any more.
pub async fn start(tx: &mut Transaction<'static, Any>, user_id: Uuid, ttl: Duration) -> Result<String> {
    sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1 AND expires_at < $2")
        .bind(user_id.to_string())
        .bind(now_micros())
        .execute(&mut **tx)
        .await?;
    issue(tx, user_id, &Uuid::now_v7().to_string(), ttl).await
}

/// A stored token, as a refresh finds it.
struct Presented {
    family: String,
    user_id: Uuid,
    expires_at: i64,
    spent: bool,
    user_disabled: bool,
}

async fn find_presented(tx: &mut Transaction<'static, Any>, hash: &str) -> Result<Option<Presented>> {
    let row = sqlx::query(
        "SELECT t.family_id, t.user_id, t.expires_at, t.used, t.revoked, u.disabled \
         FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
    )
    .bind(hash)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let user_id: String = row.try_get(1)?;
    Ok(Some(Presented {
        family: row.try_get(0)?,
        user_id: Uuid::try_parse(&user_id).map_err(|_| Error::Internal(format!("user id {user_id:?}")))?,
        expires_at: row.try_get(2)?,
        spent: row.try_get::<i64, _>(3)? != 0 || row.try_get::<i64, _>(4)? != 0,
        user_disabled: row.try_get::<i64, _>(5)? != 0,
    }))
}

/// Uses `token` up and returns its user and the next token of its family.
pub async fn rotate(db: &Db, token: &str, ttl: Duration) -> Result<(Uuid, String)> {
    let hash = hash_token(token);
    let mut tx = db.begin().await?;
    let Some(presented) = find_presented(&mut tx, &hash).await? else {
        return Err(unauthenticated("REFRESH_TOKEN_INVALID", "this refresh token is not valid; sign in again").into());
    };
    if presented.user_disabled {
        return Err(unauthenticated("USER_DISABLED", "this account is disabled").into());
    }
    if presented.spent {
        return Err(revoke_reused(tx, &presented).await);
    }
    if presented.expires_at <= now_micros() {
        return Err(unauthenticated("REFRESH_TOKEN_EXPIRED", "this refresh token has expired; sign in again").into());
    }
    if !use_up(&mut tx, &hash).await? {
        // A concurrent refresh used it between our read and our write.
        return Err(revoke_reused(tx, &presented).await);
    }
    let next = issue(&mut tx, presented.user_id, &presented.family, ttl).await?;
    tx.commit().await?;
    Ok((presented.user_id, next))
}

/// Marks the token used, unless a concurrent refresh did first.
async fn use_up(tx: &mut Transaction<'static, Any>, hash: &str) -> Result<bool> {
    let updated = sqlx::query("UPDATE refresh_tokens SET used = 1 WHERE token_hash = $1 AND used = 0 AND revoked = 0")
        .bind(hash)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(updated == 1)
}

/// Revokes the family of a token presented again, commits that, and returns the
/// refusal for the caller.
async fn revoke_reused(mut tx: Transaction<'static, Any>, presented: &Presented) -> Error {
    let revoked = async {
        revoke_family(&mut *tx, &presented.family).await?;
        tx.commit().await?;
        Ok::<_, Error>(())
    }
    .await;
    if let Err(error) = revoked {
        return error;
    }
    tracing::warn!(user_id = %presented.user_id, "a refresh token was used twice; its family is revoked");
    unauthenticated("REFRESH_TOKEN_REUSED", "this refresh token was used already; sign in again").into()
}

/// Revokes every token of `family`.
async fn revoke_family<'e>(executor: impl Executor<'e, Database = Any>, family: &str) -> Result<()> {
    sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = $1").bind(family).execute(executor).await?;
    Ok(())
}

/// Revokes the family of `token`, if there is one: signing out twice is fine.
pub async fn revoke_family_of<'e>(executor: impl Executor<'e, Database = Any>, token: &str) -> Result<()> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked = 1 \
         WHERE family_id IN (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
    )
    .bind(hash_token(token))
    .execute(executor)
    .await?;
    Ok(())
}

/// Revokes every refresh token of `user_id`.
pub async fn revoke_all_of<'e>(executor: impl Executor<'e, Database = Any>, user_id: Uuid) -> Result<()> {
    sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE user_id = $1 AND revoked = 0")
        .bind(user_id.to_string())
        .execute(executor)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_stored_hashed() {
        let (one, two) = (mint(), mint());
        assert_ne!(one, two);
        assert!(one.starts_with(PREFIX) && one.len() == PREFIX.len() + 43, "{one}");
        assert_eq!(hash_token(&one).len(), 64);
        assert_eq!(hash_token(&one), hash_token(&one));
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
