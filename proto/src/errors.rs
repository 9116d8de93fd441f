//! `google.rpc` error details on every `Status`: an `ErrorInfo` with a stable reason,
//! and a `BadRequest` naming each bad field for INVALID_ARGUMENT.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The `ErrorInfo.domain` of every Fabula error.
pub const DOMAIN: &str = "fabula.app";

/// A status with an `ErrorInfo` carrying `reason` (stable, UPPER_SNAKE).
pub fn status(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let details = ErrorDetails::with_error_info(reason, DOMAIN, std::collections::HashMap::new());
    Status::with_error_details(code, message, details)
}

/// RESOURCE_EXHAUSTED with a `RetryInfo` telling when to try again.
pub fn exhausted(reason: &str, message: impl Into<String>, retry_after: Duration) -> Status {
    let mut details = ErrorDetails::with_error_info(reason, DOMAIN, std::collections::HashMap::new());
    details.set_retry_info(Some(retry_after));
    Status::with_error_details(Code::ResourceExhausted, message, details)
}

/// Collects every problem of a request, then fails once naming them all.
#[derive(Debug, Default)]
pub struct FieldViolations(Vec<FieldViolation>);

impl FieldViolations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` (its proto name, dotted for nested fields) is wrong.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Records the error of a parse, if any, and returns its value.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|description| self.add(field, description)).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was recorded, else INVALID_ARGUMENT with a `BadRequest`.
    pub fn finish(self) -> Result<(), Status> {
        if self.0.is_empty() {
            return Ok(());
        }
        let message = self.0.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ");
        let mut details = ErrorDetails::with_error_info("INVALID_ARGUMENT", DOMAIN, std::collections::HashMap::new());
        details.set_bad_request(self.0);
        Err(Status::with_error_details(Code::InvalidArgument, message, details))
    }
}

/// INVALID_ARGUMENT naming one field.
pub fn invalid_field(field: &str, description: impl Into<String>) -> Status {
    let mut violations = FieldViolations::new();
    violations.add(field, description);
    violations.finish().expect_err("one violation was recorded")
}
