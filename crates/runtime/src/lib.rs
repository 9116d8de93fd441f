//! The runtime every Fabula binary shares.
//!
//! - [`auth`]: each method's declared policy enforced by a tower layer, and the
//!   [`auth::Caller`] handlers receive.
//! - [`token`] and [`keys`]: the access-token format (EdDSA JWT), its signing and
//!   verification, and the key files.
//! - [`errors`]: `google.rpc` error details on every `Status`, bounded in size.
//! - [`rules`]: what the request-field rules the contracts declare mean, as checks.
//! - [`config`], [`metadata`], [`telemetry`], [`shutdown`], [`server`]: settings, gRPC
//!   metadata, logs, graceful shutdown and serving a gRPC service.

pub mod auth;
pub mod config;
pub mod errors;
pub mod keys;
pub mod metadata;
pub mod rules;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod token;
