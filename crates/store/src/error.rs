//! A service's one error type and its single mapping to `tonic::Status`.
//! Database errors keep where the failing statement ran (the `?` that met it, through
//! `#[track_caller]`), are logged with that place and their cause, and reach the
//! caller as an opaque INTERNAL; everything else is already a status with its
//! `ErrorInfo`.

use std::panic::Location;

use fabula_runtime::{errors, telemetry::escaped};
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A refusal meant for the caller, with its details.
    #[error("{}", .0.message())]
    Rejected(#[from] Status),
    /// A statement that failed, and the place in the code that ran it.
    #[error("database error at {at}: {source}")]
    Database { source: sqlx::Error, at: &'static Location<'static> },
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<sqlx::Error> for Error {
    /// Notes the caller's place: for `statement.await?`, the line of that statement.
    #[track_caller]
    fn from(source: sqlx::Error) -> Self {
        Error::Database { source, at: Location::caller() }
    }
}

impl Error {
    /// The database error, when this is one.
    pub fn database(&self) -> Option<&sqlx::Error> {
        match self {
            Error::Database { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Rejected(status) => status,
            Error::Database { source: sqlx::Error::PoolTimedOut, at } => {
                tracing::error!(%at, "database pool timed out");
                errors::status(Code::Unavailable, "DATABASE_BUSY", "the service is overloaded; try again")
            }
            Error::Database { source, at } => {
                tracing::error!(%at, error = %escaped(&source), "database error");
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The line of the `?` in `failing`.
    const QUESTION_MARK_LINE: u32 = line!() + 3;

    fn failing() -> Result<()> {
        Err(sqlx::Error::RowNotFound)?;
        Ok(())
    }

    #[test]
    fn a_database_error_keeps_the_place_of_its_statement() {
        let error = failing().unwrap_err();
        let Error::Database { at, .. } = &error else { panic!("not a database error: {error:?}") };
        assert_eq!((at.file(), at.line()), (file!(), QUESTION_MARK_LINE), "the `?` in `failing`");
        assert!(error.to_string().contains(&format!("{}:{QUESTION_MARK_LINE}", file!())), "{error}");
        assert!(matches!(error.database(), Some(sqlx::Error::RowNotFound)));
    }
}
