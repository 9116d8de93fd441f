//! The web page at `/`: a small single-page app in plain HTML, CSS and JavaScript
//! modules (`web/`), compiled into the binary, that uses only the public REST API.
//! `app.js` starts it; `views/` holds a module per view (account, worlds, world, items,
//! story, jobs, admin); `page.js`, `nav.js`, `router.js`, `api.js`, `messages.js`,
//! `dom.js`, `watch.js` and `drafts.js` are what the views share. Each file is served
//! under `/assets/` at its path in `web/`, the path the modules import it by. The page's
//! views have addresses of their own (`PAGE_PATHS`, read by `router.js`): each answers
//! the page, which then shows the view its path names; any other path stays the API's
//! (a JSON 404 when unknown).
//!
//! Every file is served with a strict Content-Security-Policy (scripts, styles and
//! images of this origin only, no inline code, fetches and event streams to this
//! origin only), `no-cache` and an ETag of its content: a browser revalidates on each
//! load and gets 304 until the gateway is rebuilt with other files.

use axum::{
    Router,
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderMap, HeaderValue, StatusCode, header};

/// The page may load its own files and talk to its own origin, nothing else.
pub const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// One file of the page.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// The page and what it loads, by the path each is served at.
const ASSETS: &[Asset] = &[
    Asset { path: "/", content_type: HTML, body: include_str!("../web/index.html") },
    Asset { path: "/assets/app.css", content_type: CSS, body: include_str!("../web/app.css") },
    Asset { path: "/assets/app.js", content_type: JAVASCRIPT, body: include_str!("../web/app.js") },
    Asset { path: "/assets/page.js", content_type: JAVASCRIPT, body: include_str!("../web/page.js") },
    Asset { path: "/assets/nav.js", content_type: JAVASCRIPT, body: include_str!("../web/nav.js") },
    Asset { path: "/assets/views/account.js", content_type: JAVASCRIPT, body: include_str!("../web/views/account.js") },
    Asset { path: "/assets/views/worlds.js", content_type: JAVASCRIPT, body: include_str!("../web/views/worlds.js") },
    Asset { path: "/assets/views/world.js", content_type: JAVASCRIPT, body: include_str!("../web/views/world.js") },
    Asset { path: "/assets/views/story.js", content_type: JAVASCRIPT, body: include_str!("../web/views/story.js") },
    Asset { path: "/assets/views/items.js", content_type: JAVASCRIPT, body: include_str!("../web/views/items.js") },
    Asset { path: "/assets/views/jobs.js", content_type: JAVASCRIPT, body: include_str!("../web/views/jobs.js") },
    Asset { path: "/assets/views/review.js", content_type: JAVASCRIPT, body: include_str!("../web/views/review.js") },
    Asset { path: "/assets/views/admin.js", content_type: JAVASCRIPT, body: include_str!("../web/views/admin.js") },
    Asset {
        path: "/assets/views/invitations.js",
        content_type: JAVASCRIPT,
        body: include_str!("../web/views/invitations.js"),
    },
    Asset { path: "/assets/views/mine.js", content_type: JAVASCRIPT, body: include_str!("../web/views/mine.js") },
    Asset { path: "/assets/api.js", content_type: JAVASCRIPT, body: include_str!("../web/api.js") },
    Asset { path: "/assets/dom.js", content_type: JAVASCRIPT, body: include_str!("../web/dom.js") },
    Asset { path: "/assets/watch.js", content_type: JAVASCRIPT, body: include_str!("../web/watch.js") },
    Asset { path: "/assets/drafts.js", content_type: JAVASCRIPT, body: include_str!("../web/drafts.js") },
    Asset { path: "/assets/messages.js", content_type: JAVASCRIPT, body: include_str!("../web/messages.js") },
    Asset { path: "/assets/router.js", content_type: JAVASCRIPT, body: include_str!("../web/router.js") },
    Asset { path: "/assets/icon.svg", content_type: SVG, body: include_str!("../web/icon.svg") },
];

/// The addresses of the page's views (see `web/router.js`), each served the page:
/// a reload or a shared link lands on the view it names.
pub const PAGE_PATHS: &[&str] = &[
    "/worlds",
    "/worlds/{world}",
    "/worlds/{world}/stories",
    "/worlds/{world}/stories/{story}",
    "/worlds/{world}/characters",
    "/worlds/{world}/characters/{entity}",
    "/worlds/{world}/places",
    "/worlds/{world}/places/{place}",
    "/worlds/{world}/timeline",
    "/worlds/{world}/events/{event}",
    "/worlds/{world}/jobs",
    "/worlds/{world}/jobs/{job}",
    "/worlds/{world}/settings",
    "/jobs/{job}",
    "/admin",
    // Where an OpenID Connect provider sends the browser back (a provider's redirect URI).
    "/signin/oidc/{provider}",
];

/// A `GET` (and `HEAD`) route for each file of the page, and for each of its views'
/// addresses (the page itself).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let files = ASSETS.iter().map(|asset| (asset.path, asset));
    let views = PAGE_PATHS.iter().map(|path| (*path, &ASSETS[0]));
    files.chain(views).fold(Router::new(), |router, (path, asset)| {
        let etag = etag_of(asset.body);
        router.route(path, get(move |headers: HeaderMap| std::future::ready(serve(asset, &etag, &headers))))
    })
}

/// The file, or 304 when the browser already holds this version.
fn serve(asset: &Asset, etag: &HeaderValue, headers: &HeaderMap) -> Response {
    let cached = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ];
    if holds(headers, etag) {
        return (StatusCode::NOT_MODIFIED, cached).into_response();
    }
    (cached, [(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type))], asset.body).into_response()
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn holds(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(etag) = etag.to_str() else { return false };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// A strong ETag of `body`: its 64-bit FNV-1a hash, the same on every build of the
/// same files and on every replica.
fn etag_of(body: &str) -> HeaderValue {
    let hash = body
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
    HeaderValue::from_str(&format!("\"{hash:016x}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_differ_by_content_and_match_if_none_match_lists() {
        let etag = etag_of("body");
        assert_ne!(etag, etag_of("other body"));
        assert_eq!(etag, etag_of("body"));
        let tag = etag.to_str().unwrap().to_owned();
        for (sent, expected) in [
            (tag.clone(), true),
            (format!("W/{tag}"), true),
            (format!("\"x\", {tag}"), true),
            ("*".to_owned(), true),
            ("\"x\"".to_owned(), false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, sent.parse().unwrap());
            assert_eq!(holds(&headers, &etag), expected, "If-None-Match: {sent}");
        }
        assert!(!holds(&HeaderMap::new(), &etag));
    }

    #[test]
    fn every_module_the_page_imports_is_served() {
        let served: Vec<_> = ASSETS.iter().map(|a| a.path).collect();
        for asset in ASSETS.iter().filter(|a| a.content_type == JAVASCRIPT || a.content_type == HTML) {
            for (start, _) in asset.body.match_indices("/assets/") {
                let rest = &asset.body[start..];
                let end = rest.find(['"', '\'']).unwrap_or(rest.len());
                assert!(served.contains(&&rest[..end]), "{} loads {} which is not served", asset.path, &rest[..end]);
            }
        }
    }
}
