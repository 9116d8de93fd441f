//! The `oidc_flows` table: code flows started and not finished. A flow is found by
//! the SHA-256 of its `state` and deleted by the finish that reads it, so a state (and
//! its nonce and PKCE verifier) works once; flows past their expiry are swept at each
//! start.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use fabula_runtime::errors;
use fabula_store::{
    db::{Db, now_micros},
    error::{Error, Result},
};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tonic::Code;
use uuid::Uuid;

use crate::accounts::sessions::hash_token;

/// How long a started flow can be finished.
const LIFETIME: Duration = Duration::from_secs(600);

/// A flow just started: what the authorization URL carries.
pub struct Started {
    pub state: String,
    pub nonce: String,
    /// BASE64URL(SHA-256(verifier)): PKCE's S256 challenge.
    pub challenge: String,
}

/// A flow being finished.
pub struct Flow {
    pub nonce: String,
    pub verifier: String,
    /// The user who started it to link an identity, or `None` for a sign-in.
    pub link_user_id: Option<Uuid>,
}

fn random_text() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Starts a flow with `provider`, for `link_user_id` when it links an identity.
pub async fn start(db: &Db, provider: &str, link_user_id: Option<Uuid>) -> Result<Started> {
    let (state, nonce, verifier) = (random_text(), random_text(), random_text());
    let now = now_micros();
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM oidc_flows WHERE expire_time < $1").bind(now).execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO oidc_flows (state_hash, provider, nonce, pkce_verifier, link_user_id, expire_time) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(hash_token(&state))
    .bind(provider)
    .bind(&nonce)
    .bind(&verifier)
    .bind(link_user_id.map(|id| id.to_string()))
    .bind(now + i64::try_from(LIFETIME.as_micros()).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Ok(Started { state, nonce, challenge })
}

/// Takes the flow of `state` with `provider` out of the table: FAILED_PRECONDITION
/// (OIDC_STATE_UNKNOWN) when there is none, it was finished already or it expired.
pub async fn consume(db: &Db, provider: &str, state: &str) -> Result<Flow> {
    let row = sqlx::query(
        "DELETE FROM oidc_flows WHERE state_hash = $1 AND provider = $2 \
         RETURNING nonce, pkce_verifier, link_user_id, expire_time",
    )
    .bind(hash_token(state))
    .bind(provider)
    .fetch_optional(&db.writer)
    .await?;
    let row = row.filter(|row| row.try_get::<i64, _>(3).is_ok_and(|expiry| expiry >= now_micros()));
    let Some(row) = row else {
        let message = "this sign-in is unknown, finished already or expired; start again";
        return Err(errors::status(Code::FailedPrecondition, "OIDC_STATE_UNKNOWN", message).into());
    };
    let link_user_id: Option<String> = row.try_get(2)?;
    let link_user_id = link_user_id
        .map(|id| Uuid::try_parse(&id).map_err(|_| Error::Internal(format!("flow user {id:?} is no UUID"))))
        .transpose()?;
    Ok(Flow { nonce: row.try_get(0)?, verifier: row.try_get(1)?, link_user_id })
}
