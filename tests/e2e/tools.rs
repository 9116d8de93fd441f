//! External tools some tests drive (grpcurl, Python's grpcio): whether one is there,
//! and a loud note when it is not. A test without its tool is skipped locally, but
//! fails in CI (`CI` set), which installs every tool and must not pass on a skip.

use std::{io::Write, process::Command};

/// Whether `program` runs with `args` and succeeds.
pub fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|output| output.status.success())
}

/// True when `installed`; else says loudly that `test` did not run for want of
/// `what` (and how to install it), and fails in CI.
pub fn installed_or_skipped(installed: bool, test: &str, what: &str) -> bool {
    if installed {
        return true;
    }
    let note = format!("{test} did NOT run: {what} (see .ci/run)");
    assert!(std::env::var_os("CI").is_none(), "{note}; CI installs it and must not pass on a skip");
    let _ = writeln!(std::io::stderr(), "\n!!! WARNING: {note} !!!");
    false
}
