//! The gRPC metadata keys Fabula reads and writes.

/// The caller's bearer token: `authorization: Bearer <jwt>`.
pub const AUTHORIZATION: &str = "authorization";
/// A request id, made by the gateway or the first service when absent, echoed back.
pub const REQUEST_ID: &str = "x-request-id";
/// The W3C trace context, passed along untouched.
pub const TRACEPARENT: &str = "traceparent";

/// The request id of the call being served, put in the request's extensions by the
/// service layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);
