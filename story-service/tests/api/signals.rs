//! The `story-service` binary as it is deployed: started with its environment, it
//! serves; SIGTERM stops it cleanly, with exit status 0, once in-flight calls drained.

use std::{
    net::{SocketAddr, TcpListener},
    process::Command,
    time::{Duration, Instant},
};

use fabula_proto::server::is_serving;

#[tokio::test]
async fn sigterm_stops_the_binary_cleanly() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // A free port: bound, read, released for the child.
    let addr: SocketAddr = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    let log = dir.path().join("story-service.log");
    let log_file = std::fs::File::create(&log).expect("a log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_story-service"))
        .env_clear()
        .env("STORY_LISTEN", addr.to_string())
        .env("STORY_DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("story.db").display()))
        .env("FABULA_DATA_DIR", dir.path())
        .env("RUST_LOG", "info")
        .stdout(log_file.try_clone().expect("share the log"))
        .stderr(log_file)
        .spawn()
        .expect("start story-service");
    let started = Instant::now();
    while !is_serving(addr, "fabula.story.v1.StoryService", Duration::from_millis(200)).await {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never served: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("run kill");
    assert!(killed.success(), "SIGTERM sent");
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            break status;
        }
        if stopping.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("still running 15 s after SIGTERM: {}", std::fs::read_to_string(&log).unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "exit status {status:?}:\n{output}");
    for expected in ["SIGTERM received", "story-service stopped"] {
        assert!(output.contains(expected), "the log says {expected:?}:\n{output}");
    }
    assert!(!is_serving(addr, "", Duration::from_millis(200)).await, "nothing serves there any more");
}
