//! `GET /docs`: the API reference, one self-contained page (`web/docs.html`, inline
//! CSS and script, nothing from a CDN) that reads `/openapi.json` and renders it.

use axum::response::IntoResponse;
use http::{HeaderValue, header};

/// The page, compiled into the binary.
const PAGE: &str = include_str!("../web/docs.html");
/// Only the page's own inline style and script, and fetches of its own origin.
const POLICY: &str = "default-src 'none'; connect-src 'self'; style-src 'unsafe-inline'; \
    script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /docs`.
pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY)),
        ],
        PAGE,
    )
}
