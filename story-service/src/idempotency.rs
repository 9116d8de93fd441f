//! Idempotent creates: a `request_id` already used by the same caller returns the
//! first result, so a retried create never makes a second resource.

use fabula_runtime::errors;
use sqlx::{Any, Row, Transaction};
use tonic::Code;
use uuid::Uuid;

use fabula_store::{db::now_micros, error::Result};

/// What became of a create's `request_id`.
pub enum Claim {
    /// First use: go on and create `id`.
    New,
    /// Used before for the resource with this id: return it instead.
    Replay(Uuid),
}

/// Records that `caller`'s `request_id` creates `new_id` of `kind`, inside the
/// create's own transaction, so the record and the resource commit together.
pub async fn claim(
    tx: &mut Transaction<'static, Any>,
    caller: Uuid,
    request_id: Option<&str>,
    kind: &str,
    new_id: Uuid,
) -> Result<Claim> {
    let Some(request_id) = request_id else {
        return Ok(Claim::New);
    };
    let inserted = sqlx::query(
        "INSERT INTO create_requests (caller_id, request_id, resource_type, resource_id, create_time) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (caller_id, request_id) DO NOTHING",
    )
    .bind(caller.to_string())
    .bind(request_id)
    .bind(kind)
    .bind(new_id.to_string())
    .bind(now_micros())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::New);
    }
    let row =
        sqlx::query("SELECT resource_type, resource_id FROM create_requests WHERE caller_id = $1 AND request_id = $2")
            .bind(caller.to_string())
            .bind(request_id)
            .fetch_one(&mut **tx)
            .await?;
    let (first_kind, first_id): (String, String) = (row.try_get(0)?, row.try_get(1)?);
    if first_kind != kind {
        let message =
            format!("this request_id was already used to create another resource ({first_kind}); send a new one");
        return Err(errors::status(Code::AlreadyExists, "REQUEST_ID_REUSED", message).into());
    }
    Ok(Claim::Replay(first_id.parse().map_err(|_| fabula_store::error::Error::Internal("bad stored id".into()))?))
}
