//! The stack as a process: it starts, every part answers, it stops cleanly, and a
//! second start finds the data of the first.

use fabula_testkit::{Backend, both_databases};
use reqwest::StatusCode;
use serde_json::json;

use crate::stack;

both_databases!(every_part_answers_and_the_stack_stops_cleanly, a_second_run_finds_its_data_where_it_left_it);

async fn every_part_answers_and_the_stack_stops_cleanly(backend: Backend) {
    let running = stack::start(backend).await;
    let api = running.rest();

    let ready = api.get("/readyz").await.expect(StatusCode::OK, "GET /readyz");

    assert_eq!(ready, json!({"story-service": "SERVING", "gpt-worker": "SERVING"}), "the gateway reaches both");
    running.stop().await;
}

async fn a_second_run_finds_its_data_where_it_left_it(backend: Backend) {
    let mut running = stack::start(backend).await;
    let api = running.rest();
    let ada = api.register("ada").await;
    let as_ada = &ada.api;
    let world = as_ada.post("/v1/worlds", json!({"name": "Kept"})).await.expect(StatusCode::CREATED, "create a world");
    let world_id = world["id"].as_str().expect("a world id").to_owned();
    let story = json!({"title": "Still here", "content": "The tide came back."});
    as_ada.post(&format!("/v1/worlds/{world_id}/stories"), story).await.expect(StatusCode::CREATED, "create a story");
    api.grant_model_access(&ada).await;
    let job = json!({"paraphrase": {"text": "The tide came back.", "mode": "formal"}});
    let job = as_ada.post("/v1/jobs", job).await.expect(StatusCode::ACCEPTED, "start a job");
    let job_id = job["id"].as_str().expect("a job id").to_owned();
    let done = as_ada.get(&format!("/v1/jobs/{job_id}/wait?timeout=30s")).await.expect(StatusCode::OK, "wait");
    assert_eq!(done["state"], "SUCCEEDED", "{done}");

    running.restart().await;
    let api = running.rest();
    let as_ada = api.login("ada", fabula_testkit::PASSWORD).await.api;
    let world = as_ada.get(&format!("/v1/worlds/{world_id}")).await.expect(StatusCode::OK, "the world after a restart");
    assert_eq!(world["name"], "Kept");
    let stories = as_ada.get(&format!("/v1/worlds/{world_id}/stories")).await.expect(StatusCode::OK, "its stories");
    assert_eq!(stories["stories"][0]["title"], "Still here", "{stories}");
    let job = as_ada.get(&format!("/v1/jobs/{job_id}")).await.expect(StatusCode::OK, "the job after a restart");
    assert_eq!((&job["state"], &job["result"]), (&done["state"], &done["result"]), "{job}");
    running.stop().await;
}
