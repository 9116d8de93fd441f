//! What Fabula's tests share, so that each crate's tests hold only what is theirs. A
//! dev-dependency only.
//!
//! - [`databases`]: a test written once runs on SQLite and on PostgreSQL
//!   ([`both_databases!`]), each service on a fresh database ([`TestDatabase`]).
//! - [`services`] (features `story`, `worker`, `gateway`): story-service, gpt-worker
//!   and the gateway started on port 0 with the test settings, alone or as a [`Stack`];
//!   [`server`]: each fails the test when it fails.
//! - [`clients`]: typed gRPC clients on one connection, calls as a token's holder.
//! - [`users`] and [`worlds`]: users of each role, and the worlds and stories a test
//!   starts from.
//! - [`errors`]: checks of gRPC errors and of REST errors in the Google JSON shape.
//! - [`rest`] (feature `rest`): a client of the gateway's REST API.
//! - [`fake_model`]: the fake OpenAI-compatible model server.
//! - [`fake_oidc`] (feature `oidc`): the fake OpenID Connect provider.
//! - [`process`]: commands and service binaries run as child processes.

pub mod clients;
pub mod databases;
pub mod errors;
pub mod fake_model;
#[cfg(feature = "oidc")]
pub mod fake_oidc;
pub mod process;
#[cfg(feature = "rest")]
pub mod rest;
pub mod server;
#[cfg(feature = "story")]
pub mod services;
pub mod users;
pub mod worlds;

use std::io::Write;

pub use clients::{StoryClients, as_caller, authed, connect, jobs_client};
pub use databases::{Backend, POSTGRES_URL_VAR, PostgresDb, TestDatabase, postgres_url, skip_without_postgres};
pub use errors::{
    BadInput, bad_fields, expect_code, expect_field, expect_field_within, expect_invalid, expect_json_error,
    expect_missing, expect_short_answer, json_reason, reason,
};
pub use process::run_within;
pub use server::{Server, Shutdown, restartable_address};
#[cfg(feature = "gateway")]
pub use services::Gateway;
#[cfg(feature = "story")]
pub use services::StoryService;
#[cfg(feature = "worker")]
pub use services::{Stack, Worker};
pub use users::{ADMIN_PASSWORD, ADMIN_USERNAME, PASSWORD, TestUser};

/// Whether `program` runs with `args` and succeeds: a tool a test drives is there.
pub fn runs(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program).args(args).output().is_ok_and(|output| output.status.success())
}

/// False when `ready`; else says loudly that `test` did NOT run and `why` (what is
/// missing, and how to get it), and returns true so the test returns. A skip passes
/// on a laptop but fails in CI (`CI` set), which installs everything the tests need.
pub fn skipped_unless(ready: bool, test: &str, why: &str) -> bool {
    if ready {
        return false;
    }
    let note = format!("{test} did NOT run: {why}");
    assert!(std::env::var_os("CI").is_none(), "{note}; CI provides it and must not pass on a skip");
    let _ = writeln!(std::io::stderr(), "\n!!! WARNING: {note} !!!");
    true
}
