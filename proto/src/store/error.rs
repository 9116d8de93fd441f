//! A service's one error type and its single mapping to `tonic::Status`.
//! Database errors are logged with their cause and reach the caller as an opaque
//! INTERNAL; everything else is already a status with its `ErrorInfo`.

use crate::{errors, telemetry::escaped};
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A refusal meant for the caller, with its details.
    #[error("{}", .0.message())]
    Rejected(#[from] Status),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Rejected(status) => status,
            Error::Database(sqlx::Error::PoolTimedOut) => {
                tracing::error!("database pool timed out");
                errors::status(Code::Unavailable, "DATABASE_BUSY", "the service is overloaded; try again")
            }
            Error::Database(cause) => {
                tracing::error!(error = %escaped(&cause), "database error");
                errors::status(Code::Internal, "INTERNAL", "internal error")
            }
            Error::Internal(cause) => {
                tracing::error!(error = %escaped(&cause), "internal error");
                errors::status(Code::Internal, "INTERNAL", "internal error")
            }
        }
    }
}

/// NOT_FOUND for a resource the caller may not see or that does not exist: the two
/// are indistinguishable on purpose.
pub fn not_found(resource: &str) -> Error {
    errors::status(Code::NotFound, "NOT_FOUND", format!("{resource} not found")).into()
}

/// PERMISSION_DENIED for a resource the caller may see but not change.
pub fn denied(message: impl Into<String>) -> Error {
    errors::status(Code::PermissionDenied, "PERMISSION_DENIED", message).into()
}

/// ABORTED: the etag sent is not the current one.
pub fn etag_mismatch(resource: &str) -> Error {
    errors::status(
        Code::Aborted,
        "ETAG_MISMATCH",
        format!("the {resource} was changed since you read it; read it again and retry"),
    )
    .into()
}

/// RESOURCE_EXHAUSTED with reason QUOTA_EXCEEDED.
pub fn quota_exceeded(message: impl Into<String>) -> Error {
    errors::status(Code::ResourceExhausted, "QUOTA_EXCEEDED", message).into()
}

/// INVALID_ARGUMENT naming one field.
pub fn invalid(field: &str, description: impl Into<String>) -> Error {
    errors::invalid_field(field, description).into()
}

/// Whether a database error is a unique-constraint violation.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}
