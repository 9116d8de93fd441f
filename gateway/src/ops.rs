//! Operations: `/healthz` (the process is up), `/readyz` (both services answer
//! SERVING on `grpc.health.v1`, each at one address at least) and `/metrics`
//! (Prometheus text: requests by route and status, latency histograms, upstream
//! errors), kept by hand in a few maps.

use std::{
    collections::HashMap,
    fmt::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use http::{StatusCode, header};
use serde_json::json;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use crate::{Gateway, errors::mapping, routes::Upstream};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// One route's latency histogram.
#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// One route's counters.
#[derive(Default)]
struct RouteSeries {
    by_status: HashMap<u16, u64>,
    latency: Histogram,
}

/// Keyed by route name, so that a request looks its route up by `&str`: counting
/// allocates only the first time a route is seen.
#[derive(Default)]
struct Series {
    routes: HashMap<String, RouteSeries>,
    upstream_errors: HashMap<(String, &'static str), u64>,
}

/// The gateway's counters.
#[derive(Default)]
pub struct Metrics(Mutex<Series>);

impl Metrics {
    /// Counts a request to `route` that was answered with `status` after `elapsed`.
    pub fn observe(&self, route: &str, status: StatusCode, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut series = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let counters = match series.routes.get_mut(route) {
            Some(counters) => counters,
            None => series.routes.entry(route.to_owned()).or_default(),
        };
        *counters.by_status.entry(status.as_u16()).or_default() += 1;
        let histogram = &mut counters.latency;
        histogram.count += 1;
        histogram.sum += seconds;
        for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
            *bucket += u64::from(seconds <= bound);
        }
    }

    /// Counts an error status a service answered `route` with.
    pub fn upstream_error(&self, route: &str, code: Code) {
        let mut series = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *series.upstream_errors.entry((route.to_owned(), mapping(code).1)).or_default() += 1;
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let series = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        out.push_str(
            "# HELP gateway_requests_total Requests by route and HTTP status.\n# TYPE gateway_requests_total counter\n",
        );
        for (route, counters) in &series.routes {
            for (status, n) in &counters.by_status {
                let _ = writeln!(out, "gateway_requests_total{{route=\"{}\",status=\"{status}\"}} {n}", escape(route));
            }
        }
        out.push_str("# HELP gateway_request_duration_seconds Request latency by route.\n# TYPE gateway_request_duration_seconds histogram\n");
        for (route, RouteSeries { latency: h, .. }) in &series.routes {
            let route = escape(route);
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                let _ =
                    writeln!(out, "gateway_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}");
            }
            let _ =
                writeln!(out, "gateway_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "gateway_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "gateway_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
        }
        out.push_str("# HELP gateway_upstream_errors_total Error statuses from the services, by route and code.\n# TYPE gateway_upstream_errors_total counter\n");
        for ((route, code), n) in &series.upstream_errors {
            let _ = writeln!(out, "gateway_upstream_errors_total{{route=\"{}\",code=\"{code}\"}} {n}", escape(route));
        }
        out
    }
}

/// A label value with `\` and `"` escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when both services report SERVING, else 503 naming who does not.
pub async fn readyz(State(gateway): State<Arc<Gateway>>) -> Response {
    let (story, worker) =
        tokio::join!(serving(&gateway, Upstream::StoryService), serving(&gateway, Upstream::GptWorker));
    let status = if story && worker { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let word = |up: bool| if up { "SERVING" } else { "NOT_SERVING" };
    json_response(status, &json!({"story-service": word(story), "gpt-worker": word(worker)}))
}

/// Whether an address of `upstream` answers SERVING within the connect timeout.
async fn serving(gateway: &Gateway, upstream: Upstream) -> bool {
    for channel in gateway.upstreams.channels(upstream) {
        let mut client = HealthClient::new(channel);
        let check = client.check(HealthCheckRequest { service: String::new() });
        if let Ok(Ok(response)) = tokio::time::timeout(gateway.settings.connect_timeout, check).await
            && response.into_inner().status() == ServingStatus::Serving
        {
            return true;
        }
    }
    false
}

/// `GET /metrics`.
pub async fn metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], gateway.metrics.render()).into_response()
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}
