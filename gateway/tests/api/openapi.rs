//! `/openapi.json` and `/docs` against the real stack: the document covers every
//! route, every `$ref` resolves and operation ids are unique; `openapi-spec-validator`
//! accepts it as OpenAPI 3.1; and schemathesis, run against the live gateway with every
//! check (positive and negative data among them) as an anonymous caller, a user and an
//! administrator, finds nothing: no 5xx, no answer the document does not describe, no
//! valid request refused and no invalid one taken. The two Python tools run when they
//! are installed (`.ci/run` installs them); without them the tests say so loudly and
//! skip, which fails in CI.
//!
//! These run on SQLite only. The document is the gateway's own and never reaches
//! storage; schemathesis does, but it takes about twelve minutes, and running it on
//! PostgreSQL too would double CI's time for what the gateway's other tests already
//! check on both databases (the REST mapping is the same whatever stores the rows).

use crate::common;

use std::{collections::HashSet, io::Write, path::Path, process::Command, time::Duration};

use common::{Backend, spawn};
use fabula_testkit::run_within;
use gateway::{Settings, openapi::openapi_path, routes::RouteTable};
use prost_reflect::DescriptorPool;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The pinned schemathesis of `.ci/run`, and how long one run may take here.
const SCHEMATHESIS: &str = "schemathesis";
const SCHEMATHESIS_BUDGET: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_covers_every_route_and_every_ref_resolves() {
    let stack = spawn(Backend::Sqlite).await;
    let answer = stack.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], "application/json");
    let doc = answer.body;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], "/");

    for route in &route_table().routes {
        let verb = route.http_method.as_str().to_ascii_lowercase();
        let operation = &doc["paths"][&openapi_path(&route.template)][&verb];
        assert!(operation.is_object(), "{} is missing", route.name);
        assert_eq!(operation["tags"][0], route.method.parent_service().name(), "{}", route.name);
        assert!(operation["responses"][route.success.as_str()].is_object(), "{}", route.name);
    }
    let shapes: HashSet<String> = doc["paths"].as_object().unwrap().keys().map(|path| shape(path)).collect();
    assert_eq!(shapes.len(), doc["paths"].as_object().unwrap().len(), "two paths differ only in variable names");
    let mut ids = HashSet::new();
    for operation in doc["paths"].as_object().unwrap().values().flat_map(|item| item.as_object().unwrap().values()) {
        let id = operation["operationId"].as_str().expect("an operationId");
        assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
    }
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 50, "{} refs", refs.len());
    for reference in refs {
        let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("{reference} is not local"));
        assert!(doc.pointer(pointer).is_some(), "{reference} does not resolve");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_is_self_contained() {
    let stack = spawn(Backend::Sqlite).await;
    let answer = stack.call(Method::GET, "/docs", None, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = answer.body.as_str().expect("an HTML page");
    assert!(page.contains("/openapi.json") && page.contains("<h1>"));
    for external in ["src=\"http", "href=\"http", "src=\"//", "href=\"//", "@import"] {
        assert!(!page.contains(external), "the page loads something from elsewhere: {external}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_spec_validator_accepts_the_document() {
    let installed = fabula_testkit::runs("python3", &["-c", "import openapi_spec_validator"]);
    let test = "openapi::openapi_spec_validator_accepts_the_document";
    if fabula_testkit::skipped_unless(installed, test, "openapi-spec-validator is not installed (see .ci/run)") {
        return;
    }
    let stack = spawn(Backend::Sqlite).await;
    let doc = stack.call(Method::GET, "/openapi.json", None, None).await.body;
    let file = stack.services.dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let output = Command::new("python3").args(["-m", "openapi_spec_validator"]).arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "openapi-spec-validator:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_as_anyone_user_or_administrator() {
    let installed = fabula_testkit::runs(SCHEMATHESIS, &["--version"]);
    let test = "openapi::schemathesis_finds_nothing_as_anyone_user_or_administrator";
    if fabula_testkit::skipped_unless(
        installed,
        test,
        "schemathesis is not installed (see .ci/run for the pinned version)",
    ) {
        return;
    }
    let stack = spawn(Backend::Sqlite).await;
    let user = stack.rest.register("fuzzer").await;
    let admin = stack.rest.admin().await;
    let callers =
        [("an anonymous caller", None), ("a user", Some(user.token)), ("an administrator", Some(admin.token))];
    let mut failed = Vec::new();
    for (who, token) in callers {
        let mut command = schemathesis_command(&stack.base, token.as_deref());
        command.current_dir(stack.services.dir.path());
        let (status, text) = run_within(command, SCHEMATHESIS_BUDGET).await;
        let _ = writeln!(std::io::stderr(), "== schemathesis as {who}\n{text}");
        match status {
            Some(status) if status.success() => {}
            Some(_) => failed.push(format!("as {who}, schemathesis found problems")),
            None => failed.push(format!("as {who}, schemathesis did not finish within {SCHEMATHESIS_BUDGET:?}")),
        }
    }
    assert!(failed.is_empty(), "{} (the output is above)", failed.join("; "));
}

/// `schemathesis run` against the gateway at `base` with every check, as the caller
/// of `token` (anonymous without one), bounded. One worker: the pinned tool's
/// generator is not safe across threads on CPython 3.11 (it raises "AST constructor
/// recursion depth mismatch" now and then).
fn schemathesis_command(base: &str, token: Option<&str>) -> Command {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml");
    let mut command = Command::new(SCHEMATHESIS);
    command
        .arg("--config-file")
        .arg(config)
        .args(["run", &format!("{base}/openapi.json"), "--url", base, "--checks", "all"])
        .args(["--max-examples", "15", "--max-time", "240", "--workers", "1", "--request-timeout", "10"])
        .args(["--generation-database", "none", "--seed", "7", "--no-color"]);
    if let Some(token) = token {
        command.args(["--header", &format!("Authorization: Bearer {token}")]);
    }
    command
}

fn route_table() -> RouteTable {
    let pool = DescriptorPool::decode(fabula_contracts::FILE_DESCRIPTOR_SET).unwrap();
    RouteTable::from_pool(pool, &Settings::for_tests("http://a", "http://b", "k".into())).unwrap()
}

/// A path with its variables' names left out: `/v1/stories/{}`.
fn shape(path: &str) -> String {
    let parts = path.split('/').map(|part| if part.starts_with('{') { "{}" } else { part });
    parts.collect::<Vec<_>>().join("/")
}

/// Every `$ref` in `value`.
fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                out.push(reference.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
