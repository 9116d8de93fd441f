//! The stack as a process: it starts, every part answers, and it stops cleanly.

use fabula_proto::{both_databases, testing::Backend};
use reqwest::StatusCode;
use serde_json::json;

use crate::{rest::Rest, stack};

both_databases!(every_part_answers_and_the_stack_stops_cleanly);

async fn every_part_answers_and_the_stack_stops_cleanly(backend: Backend) {
    let running = stack::start(backend).await;
    let api = Rest::new(&running);

    let ready = api.get("/readyz").await.expect(StatusCode::OK, "GET /readyz");

    assert_eq!(ready, json!({"story-service": "SERVING", "gpt-worker": "SERVING"}), "the gateway reaches both");
    running.stop().await;
}
