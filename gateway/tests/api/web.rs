//! The web page: `/` and the files it loads, each with its content type, the strict
//! Content-Security-Policy, and ETag revalidation; the addresses of its views, which
//! answer the page, and the paths beside them that stay the API's. No service is
//! needed for these.

use crate::common;

use reqwest::{StatusCode, header};

/// A gateway with nothing behind it, and its base URL.
async fn gateway_alone() -> (String, fabula_testkit::Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    fabula_runtime::keys::development_key(dir.path(), fabula_runtime::keys::ACCOUNTS_KEY_FILE).unwrap();
    let nowhere = "http://127.0.0.1:9";
    let gateway = fabula_testkit::Gateway::start(dir.path(), nowhere, nowhere, |_| {}).await;
    (gateway.base_url(), gateway, dir)
}

/// The `/assets/…` paths a text refers to in `src="…"` or `href="…"` or an import.
fn asset_paths(text: &str) -> Vec<String> {
    text.match_indices("\"/assets/")
        .map(|(start, _)| {
            let rest = &text[start + 1..];
            rest[..rest.find('"').unwrap_or(rest.len())].to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_files_are_served_with_a_strict_policy() {
    let (base, _gateway, _dir) = gateway_alone().await;
    let http = common::http_client();

    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    for directive in
        ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]
    {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert!(!policy.contains("unsafe"), "no inline code allowed: {policy}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/assets/app.js">"#), "{html}");
    assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style: {html}");

    // Every file the page and its modules load, each with its own type.
    let mut pending = asset_paths(&html);
    let mut seen = Vec::new();
    while let Some(path) = pending.pop() {
        if seen.contains(&path) {
            continue;
        }
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let expected = match path.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("unexpected asset type {other:?} of {path}"),
        };
        assert_eq!(response.headers()[header::CONTENT_TYPE], expected, "{path}");
        assert!(response.headers().contains_key(header::CONTENT_SECURITY_POLICY), "{path}");
        let body = response.text().await.unwrap();
        pending.extend(asset_paths(&body));
        seen.push(path);
    }
    for expected in [
        "/assets/app.js",
        "/assets/app.css",
        "/assets/page.js",
        "/assets/nav.js",
        "/assets/views/account.js",
        "/assets/views/worlds.js",
        "/assets/views/world.js",
        "/assets/views/story.js",
        "/assets/views/jobs.js",
        "/assets/views/review.js",
        "/assets/views/invitations.js",
        "/assets/views/mine.js",
        "/assets/views/admin.js",
        "/assets/api.js",
        "/assets/watch.js",
        "/assets/dom.js",
    ] {
        assert!(seen.iter().any(|p| p == expected), "{expected} is loaded by the page: {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_revalidates_with_the_etag_and_gets_304() {
    let (base, _gateway, _dir) = gateway_alone().await;
    let http = common::http_client();
    for path in ["/", "/assets/app.js"] {
        let first = http.get(format!("{base}{path}")).send().await.unwrap();
        let etag = first.headers()[header::ETAG].clone();
        assert!(etag.to_str().unwrap().starts_with('"'), "a strong ETag: {etag:?}");
        let again = http.get(format!("{base}{path}")).header(header::IF_NONE_MATCH, etag.clone()).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.headers()[header::ETAG], etag);
        assert!(again.bytes().await.unwrap().is_empty());
        let stale = http.get(format!("{base}{path}")).header(header::IF_NONE_MATCH, "\"stale\"").send().await.unwrap();
        assert_eq!(stale.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_paths_still_reach_the_api_and_its_errors() {
    let (base, _gateway, _dir) = gateway_alone().await;
    let missing =
        common::Answer::read(common::http_client().get(format!("{base}/assets/nope.js")).send().await.unwrap()).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["error"]["status"], "NOT_FOUND", "{:?}", missing.body);
    let posted = common::http_client().post(format!("{base}/")).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_view_has_an_address_that_answers_the_page() {
    let (base, _gateway, _dir) = gateway_alone().await;
    let http = common::http_client();
    let home = http.get(format!("{base}/")).send().await.unwrap();
    let etag = home.headers()[header::ETAG].clone();
    let page = home.text().await.unwrap();
    let world = "3f1c2a9e-6d1b-4f57-9a64-2b8f7f0c1d11";
    let views = [
        "/worlds".to_owned(),
        format!("/worlds/{world}"),
        format!("/worlds/{world}/stories"),
        format!("/worlds/{world}/stories/{world}"),
        format!("/worlds/{world}/characters"),
        format!("/worlds/{world}/characters/{world}"),
        format!("/worlds/{world}/places"),
        format!("/worlds/{world}/places/{world}"),
        format!("/worlds/{world}/timeline"),
        format!("/worlds/{world}/events/{world}"),
        format!("/worlds/{world}/jobs"),
        format!("/worlds/{world}/jobs/{world}"),
        format!("/worlds/{world}/settings"),
        format!("/jobs/{world}"),
        "/admin".to_owned(),
    ];
    for path in &views {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8", "{path}");
        assert!(response.headers().contains_key(header::CONTENT_SECURITY_POLICY), "{path}");
        assert_eq!(response.headers()[header::ETAG], etag, "{path}: the same page, cached once");
        assert_eq!(response.text().await.unwrap(), page, "{path}");
        let again = http.get(format!("{base}{path}")).header(header::IF_NONE_MATCH, etag.clone()).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }

    // Paths that name no view stay the API's: a JSON 404, or its own answer.
    for path in [
        "/nope".to_owned(),
        "/world".to_owned(),
        format!("/worlds/{world}/nope"),
        format!("/worlds/{world}/timeline/{world}"),
        format!("/worlds/{world}/settings/{world}"),
        format!("/worlds/{world}/stories/{world}/more"),
        "/jobs".to_owned(),
        "/admin/users".to_owned(),
        "/assets/nope.js".to_owned(),
    ] {
        let missing = common::Answer::read(http.get(format!("{base}{path}")).send().await.unwrap()).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(missing.body["error"]["status"], "NOT_FOUND", "{path}: {:?}", missing.body);
    }
    let docs = http.get(format!("{base}/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let openapi = http.get(format!("{base}/openapi.json")).send().await.unwrap();
    assert_eq!(openapi.status(), StatusCode::OK);
    assert!(openapi.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/json"));
    let posted = http.post(format!("{base}/worlds")).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::METHOD_NOT_ALLOWED, "a view's address is only read");
}
