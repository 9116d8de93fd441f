//! The end-to-end suite: the whole stack started as `cargo run` starts it, on SQLite
//! and on PostgreSQL, driven from outside over real sockets: through the gateway's
//! REST API as a browser meets it, and through gRPC as internal callers do.

mod stack;

mod accounts;
mod browser;
mod errors;
mod grpc;
mod jobs;
mod lifecycle;
mod long_values;
mod readme;
mod reflection;
mod resources;
mod sharing;
