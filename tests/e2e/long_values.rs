//! A long invalid value, sent by a client on gRPC's C core (Python's grpcio), is
//! INVALID_ARGUMENT with a short message on both services, not RESOURCE_EXHAUSTED for
//! an error too large for its headers: `long_values.py` beside this file makes the
//! calls. `.ci/run` installs grpcio; without it the test says so loudly, and fails in CI.

use std::{path::Path, process::Command, time::Duration};

use fabula_testkit::{Backend, run_within};

use crate::stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_gets_invalid_argument_for_an_id_of_100_000_characters() {
    let test = "long_values::grpcio_gets_invalid_argument_for_an_id_of_100_000_characters";
    let installed = fabula_testkit::runs("python3", &["-c", "import grpc"]);
    if fabula_testkit::skipped_unless(installed, test, "Python's grpcio is not installed (pip install grpcio)") {
        return;
    }
    let running = stack::start(Backend::Sqlite).await;
    let ada = running.rest().register("ada").await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/long_values.py");
    let mut python = Command::new("python3");
    python.arg(script).args([
        running.addresses.story.to_string(),
        running.addresses.worker.to_string(),
        ada.token.clone(),
    ]);
    let (status, output) = run_within(python, Duration::from_secs(120)).await;
    running.stop().await;
    assert!(status.is_some_and(|s| s.success()), "long_values.py ({status:?}):\n{output}");
    assert_eq!(output.matches("INVALID_ARGUMENT").count(), 20, "every call was answered:\n{output}");
}
