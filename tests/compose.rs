//! docker-compose.yml cannot be run here (there is no Docker engine), so it is checked
//! against the binaries instead: every environment variable it gives a Fabula service
//! must be one that service reads, or the setting would be silently ignored.

use std::collections::BTreeSet;

use clap::{Args, Command};

/// Variables read outside the settings structs.
const READ_ELSEWHERE: &[&str] = &["RUST_LOG"];

/// The environment variables the settings `A` read.
fn variables_read_by<A: Args>() -> BTreeSet<String> {
    A::augment_args(Command::new("probe"))
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|name| name.to_string_lossy().into_owned())
        .chain(READ_ELSEWHERE.iter().map(|name| (*name).to_owned()))
        .collect()
}

/// The variable names in the `environment:` block of `service` in the compose file,
/// read line by line: the file keeps one `NAME: value` per line there.
fn variables_given_to(service: &str) -> BTreeSet<String> {
    let compose = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
        .expect("docker-compose.yml at the repository root");
    let mut in_service = false;
    let mut in_environment = false;
    let mut names = BTreeSet::new();
    for line in compose.lines() {
        let indent = line.len() - line.trim_start().len();
        match indent {
            2 if line.trim_end().ends_with(':') => in_service = line.trim() == format!("{service}:"),
            4 => in_environment = in_service && line.trim() == "environment:",
            6 if in_environment => {
                if let Some((name, _)) = line.trim().split_once(':') {
                    names.insert(name.to_owned());
                }
            }
            _ => {}
        }
    }
    assert!(!names.is_empty(), "no environment found for {service} in docker-compose.yml");
    names
}

#[test]
fn every_variable_compose_sets_is_one_its_service_reads() {
    let services = [
        ("story-service", variables_read_by::<story_service::Settings>()),
        ("gpt-worker", variables_read_by::<gpt_worker::Settings>()),
        ("gateway", variables_read_by::<gateway::Settings>()),
    ];
    for (service, read) in services {
        let unknown: Vec<_> = variables_given_to(service).into_iter().filter(|name| !read.contains(name)).collect();
        assert!(unknown.is_empty(), "docker-compose.yml gives {service} variables it never reads: {unknown:?}");
    }
}

#[test]
fn the_scan_sees_every_variable_of_a_service() {
    let given = variables_given_to("gpt-worker");
    for name in ["WORKER_DATABASE_URL", "STORY_SERVICE_URL", "LLM_BASE_URL", "RUST_LOG"] {
        assert!(given.contains(name), "{name} was not read from docker-compose.yml: {given:?}");
    }
}
