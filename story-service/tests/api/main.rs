//! story-service's integration tests: the gRPC API against a real server on loopback, on SQLite and PostgreSQL.
//! One test binary per crate: one link, and the tests share its threads.

mod common;

mod accounts;
mod authorization;
mod concurrency;
mod entities_locations;
mod events;
mod identities;
mod internal_errors;
mod invitations;
mod logs;
mod long_values;
mod my_stories;
mod names;
mod plumbing;
mod proposals;
mod revisions;
mod signals;
mod stats;
mod stories;
mod tokens;
mod worlds;
