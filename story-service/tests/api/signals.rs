//! The `story-service` binary as it is deployed: started with its environment, it
//! serves; SIGTERM stops it cleanly, with exit status 0, once in-flight calls drained.

use crate::common;

use std::time::Duration;

use common::start_binary;
use fabula_runtime::server::is_serving;

#[tokio::test]
async fn sigterm_stops_the_binary_cleanly() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut binary = start_binary(dir.path()).await;
    binary.terminate();
    let status = binary.exit_within(Duration::from_secs(15)).await;
    let output = binary.log();
    let status = status.unwrap_or_else(|| panic!("still running 15 s after SIGTERM:\n{output}"));
    assert!(status.success(), "exit status {status:?}:\n{output}");
    for expected in ["SIGTERM received", "story-service stopped"] {
        assert!(output.contains(expected), "the log says {expected:?}:\n{output}");
    }
    assert!(!is_serving(binary.addr, "", Duration::from_millis(200)).await, "nothing serves there any more");
}
