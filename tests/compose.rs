//! docker-compose.yml cannot be run here (there is no Docker engine), so it is checked
//! against the binaries instead: every environment variable it gives a Fabula service
//! must be one that service reads, or the setting would be silently ignored; every
//! image it builds must be a stage of the Dockerfile, whose build context leaves out
//! what building and running leave behind.

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

fn read(file: &str) -> String {
    std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn every_image_compose_builds_is_a_stage_of_the_dockerfile() {
    let dockerfile = read("Dockerfile");
    let stages: BTreeSet<&str> = dockerfile
        .lines()
        .filter(|line| line.starts_with("FROM "))
        .filter_map(|line| line.split_once(" AS ").map(|(_, stage)| stage.trim()))
        .collect();
    let compose = read("docker-compose.yml");
    let targets: Vec<&str> = compose.lines().filter_map(|line| line.trim().strip_prefix("target: ")).collect();
    assert_eq!(targets.len(), 3, "story-service, gpt-worker and gateway are built: {targets:?}");
    for target in targets {
        assert!(stages.contains(target), "docker-compose.yml builds {target}, which the Dockerfile lacks: {stages:?}");
    }
}

#[test]
fn the_build_context_leaves_out_what_building_and_running_leave_behind() {
    // `COPY . .` would otherwise send gigabytes of target/ to the engine and put the
    // host's build over the image's cached one.
    let ignored: BTreeSet<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    for entry in ["target/", "data/", ".git/", "**/node_modules/"] {
        assert!(ignored.contains(entry), ".dockerignore lacks {entry}: {ignored:?}");
    }
}
