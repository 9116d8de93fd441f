//! gpt-worker's integration tests: real story-service and workers on loopback, a fake OpenAI server, on SQLite and PostgreSQL.
//! One test binary per crate: one link, and the tests share its threads.

#[macro_use]
mod common;

mod access;
mod cancel;
mod kinds;
mod lease;
mod list;
mod llm_openai;
mod long_values;
mod provider;
mod recovery;
mod retention;
mod shared_queue;
mod shutdown;
mod story_outage;
mod wake_up;
mod watch;
