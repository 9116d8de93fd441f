//! What the binary logs cannot be forged by what clients send: a login holding a
//! newline and a timestamp, failed until its sign-ins lock (which logs the login),
//! shows up escaped on the lock's own line, and no line of the log starts with the
//! forged timestamp.

use crate::common;

use common::{connect, start_binary};
use fabula_contracts::pb::accounts::{LoginRequest, account_service_client::AccountServiceClient};
use tonic::Code;

/// A login that, written raw, would put a line of its own in the log.
const FORGED_LOGIN: &str = "nobody\n2026-12-03T00:00:00Z ERROR forged";
/// Failed sign-ins that lock a login (the fifth locks it, and says so in the log).
const FAILURES_TO_LOCK: usize = 5;

#[tokio::test]
async fn a_login_cannot_forge_a_log_line() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let binary = start_binary(dir.path()).await;
    let mut accounts = AccountServiceClient::new(connect(binary.addr).await);
    for attempt in 1..=FAILURES_TO_LOCK {
        let request = LoginRequest { login: FORGED_LOGIN.into(), password: "not the password".into() };
        let refused = accounts.login(request).await.expect_err("no such account");
        assert_eq!(refused.code(), Code::Unauthenticated, "attempt {attempt}: {refused:?}");
    }
    // The lock is logged while the fifth attempt is answered, before its answer.
    let log = binary.log();
    let forged = log.lines().find(|line| line.to_lowercase().starts_with("2026-12-03t00:00:00z"));
    assert_eq!(forged, None, "a line of the log was forged:\n{log}");
    let locked = log.lines().find(|line| line.contains("sign-ins locked")).unwrap_or_else(|| panic!("no lock:\n{log}"));
    // Logins are counted in lower case.
    assert!(
        locked.contains(r#""login:nobody\n2026-12-03t00:00:00z error forged""#),
        "the login is on the lock's line, quoted and escaped: {locked}"
    );
}
