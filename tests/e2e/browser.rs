//! The web page in a real browser: scripts in `tests/browser/` drive headless Chromium
//! (Debian's `/usr/bin/chromium`, through npm's `playwright-core`) against a fresh
//! stack. `journey.mjs`: a writer registers, writes, gets model access from the
//! administrator, runs AnalyzeStory, watches it and accepts its proposal, resolves an edit conflict, and logs
//! out. `cancel.mjs`: a job waiting on a model that never answers is cancelled.
//! `drafts.mjs` (at a desktop's and a phone's width): nothing typed is lost: the editor saves after a pause, the text typed
//! when the session ends comes back after signing in and saves, and an edit from
//! another tab, or made while the writer was signed out, is shown as a conflict.
//! `links.mjs`: every view is a link (a reload, Back and Forward land on it), a
//! character and an event are edited where they are shown, the editor counts words and
//! limits, the timeline groups eras without case; at a desktop's and a phone's width.
//! `reader.mjs`: an owner invites from the world's settings and the invitee accepts; a
//! reader sees stories as text and only the AI jobs they may run, is
//! told plainly when access is withdrawn, and links to public worlds open signed out.
//! `oidc.mjs`: a writer signs in with an OpenID Connect provider (the test kit's fake
//! one) from the sign-in screen, and a callback the tab did not start is refused.
//! `review.mjs` (at a desktop's and a phone's width): an analysis ends in a proposal the
//! writer reviews (one change left out, one renamed, a stale one named), accepts, then
//! undoes, the world as before.
//! `views.mjs`: every view at 390, 1280 and 1920 px scrolls only down and passes
//! axe-core's serious and critical rules, a job streams in with moving progress, and
//! the README's pictures are taken (into `target/pictures/`, or the folder
//! `FABULA_PICTURES` names: `FABULA_PICTURES=docs/pictures` refreshes the README's).
//!
//! `.ci/run` installs Chromium and the npm package; where either or node is missing the
//! test says so loudly and does nothing.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use fabula_testkit::{Backend, run_within};

use crate::stack;

const CHROMIUM: &str = "/usr/bin/chromium";
/// Long enough for a slow CI machine; the script's own waits are shorter.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// What is missing to run the browser test, if anything.
fn missing_tools() -> Option<String> {
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !node {
        return Some("node is not installed".into());
    }
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} is missing (apt-get install chromium)"));
    }
    if !browser_dir().join("node_modules/playwright-core").is_dir() {
        return Some("playwright-core is not installed (npm ci --prefix tests/browser)".into());
    }
    None
}

/// Whether the test cannot run here, after saying so loudly (a failure in CI).
fn skipped(test: &str) -> bool {
    let missing = missing_tools();
    fabula_testkit::skipped_unless(missing.is_none(), &format!("browser::{test}"), &missing.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_works_through_the_web_page_in_chromium() {
    on_a_fresh_stack("a_writer_works_through_the_web_page_in_chromium", &[], &[("journey.mjs", Width::Desktop)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_typed_on_the_web_page_is_lost() {
    let scenarios = [("drafts.mjs", Width::Desktop), ("drafts.mjs", Width::Phone)];
    on_a_fresh_stack("nothing_typed_on_the_web_page_is_lost", &[], &scenarios).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_fits_a_phone_and_passes_the_accessibility_check() {
    // The offline model writes slowly enough for the page to show a job streaming in.
    let flags = ["--llm-offline-pace", "150ms"];
    on_a_fresh_stack(
        "every_view_fits_a_phone_and_passes_the_accessibility_check",
        &flags,
        &[("views.mjs", Width::Desktop)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_of_the_web_page_is_a_link_and_editable_where_it_is_shown() {
    let test = "every_view_of_the_web_page_is_a_link_and_editable_where_it_is_shown";
    on_a_fresh_stack(test, &[], &[("links.mjs", Width::Desktop)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_offers_a_reader_only_what_they_may_do() {
    let test = "the_web_page_offers_a_reader_only_what_they_may_do";
    on_a_fresh_stack(test, &[], &[("reader.mjs", Width::Desktop)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_reviews_what_the_co_writer_proposes_and_undoes_it_on_the_web_page() {
    let test = "a_writer_reviews_what_the_co_writer_proposes_and_undoes_it_on_the_web_page";
    on_a_fresh_stack(test, &[], &[("review.mjs", Width::Desktop), ("review.mjs", Width::Phone)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_is_cancelled_from_the_web_page() {
    // A model server that takes connections and never answers: jobs wait on it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the silent model");
    let model_url = format!("http://{}/v1", silent.local_addr().expect("its address"));
    let holding = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            held.push(connection);
        }
    });
    let flags = ["--llm-base-url", &model_url, "--llm-api-key", "never-answers"];
    on_a_fresh_stack("a_running_job_is_cancelled_from_the_web_page", &flags, &[("cancel.mjs", Width::Desktop)]).await;
    holding.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_signs_in_with_an_openid_provider_on_the_web_page() {
    use fabula_testkit::fake_oidc::{CLIENT_ID, CLIENT_SECRET, FakeOidc};
    let test = "a_writer_signs_in_with_an_openid_provider_on_the_web_page";
    if skipped(test) {
        return;
    }
    let fake = FakeOidc::start().await;
    let mut person = fake.claims("sub-writer", "oidc.writer@example.test");
    person["preferred_username"] = serde_json::json!("oidc_writer");
    fake.sign_in_next(person);
    // The provider sends the browser back to the gateway: its address is known first.
    let gateway = fabula_testkit::restartable_address().to_string();
    let provider = format!(
        "name=fake,issuer={},client_id={CLIENT_ID},client_secret={CLIENT_SECRET},redirect_uri=http://{gateway}/signin/oidc/fake",
        fake.issuer
    );
    let flags = ["--gateway-listen", &gateway, "--oidc-provider", &provider];
    let running = stack::start_with(Backend::Sqlite, &flags).await;
    run_scenario("oidc.mjs", &running.base_url(), Width::Desktop).await;
    running.stop().await;
}

/// Runs each of `scenarios` (a script and a width) in turn against one fresh stack
/// started with the command-line `flags`; unless the tools are missing (`skipped`).
async fn on_a_fresh_stack(test: &str, flags: &[&str], scenarios: &[(&str, Width)]) {
    if skipped(test) {
        return;
    }
    let running = stack::start_with(Backend::Sqlite, flags).await;
    for &(script, width) in scenarios {
        run_scenario(script, &running.base_url(), width).await;
    }
    running.stop().await;
}

/// Where `views.mjs` puts the README's pictures: `FABULA_PICTURES` (relative to the
/// repository), else `target/pictures`.
fn pictures_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("FABULA_PICTURES").map_or_else(|| root.join("target/pictures"), |dir| root.join(dir))
}

/// The width a scenario's pages have, unless the scenario chooses (FABULA_VIEWPORT).
#[derive(Clone, Copy, Debug)]
enum Width {
    Desktop,
    /// 390 px.
    Phone,
}

/// Runs `tests/browser/<script>` against `base_url` at `width`, prints what it
/// printed, and asserts it passed.
async fn run_scenario(script: &str, base_url: &str, width: Width) {
    let (status, output) = run_script(script, base_url, width).await;
    let _ = writeln!(std::io::stderr(), "--- tests/browser/{script} ({width:?}) ---\n{output}--- end ---");
    assert!(status.is_some_and(|s| s.success()), "tests/browser/{script} failed ({status:?}); its output is above");
}

/// Runs the script against `base_url`; its exit status (None when it timed out) and
/// everything it printed.
async fn run_script(script: &str, base_url: &str, width: Width) -> (Option<std::process::ExitStatus>, String) {
    let mut command = Command::new("node");
    command
        .arg(script)
        .arg(base_url)
        .current_dir(browser_dir())
        .env("FABULA_ADMIN_USERNAME", stack::ADMIN_USERNAME)
        .env("FABULA_ADMIN_PASSWORD", stack::ADMIN_PASSWORD)
        .env("FABULA_PICTURES", pictures_dir())
        .env(
            "FABULA_VIEWPORT",
            match width {
                Width::Desktop => "desktop",
                Width::Phone => "phone",
            },
        );
    run_within(command, SCRIPT_TIMEOUT).await
}
