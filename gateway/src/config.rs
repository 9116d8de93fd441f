//! The gateway's settings: flags with environment fallbacks. Every argument has an
//! explicit `gateway_…` id so that the one-process stack can flatten these beside
//! story-service's and gpt-worker's settings. Tests build the struct directly.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use fabula_runtime::config::parse_duration;

#[derive(clap::Args, Clone, Debug)]
#[group(id = "gateway")]
pub struct Settings {
    /// Address the REST gateway listens on (port 0 picks a free one).
    #[arg(id = "gateway_listen", long = "gateway-listen", env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// story-service's gRPC address; several, comma-separated, are balanced.
    #[arg(
        id = "gateway_story_service_url",
        long = "gateway-story-service-url",
        env = "STORY_SERVICE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub story_service_url: String,

    /// gpt-worker's gRPC address; several, comma-separated, are balanced.
    #[arg(
        id = "gateway_worker_service_url",
        long = "gateway-worker-service-url",
        env = "WORKER_SERVICE_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub worker_service_url: String,

    /// PEM file with story-service's Ed25519 public key, to check tokens at the edge;
    /// during a key rotation, the new key and the retired one (one PEM block each).
    #[arg(
        id = "gateway_token_public_key_file",
        long = "gateway-token-public-key-file",
        env = "GATEWAY_TOKEN_PUBLIC_KEY_FILE",
        default_value = "data/token-ed25519.pub.pem"
    )]
    pub token_public_key_file: PathBuf,

    /// Largest request body, in bytes.
    #[arg(id = "gateway_body_limit", long = "gateway-body-limit", env = "GATEWAY_BODY_LIMIT", default_value_t = 1 << 20)]
    pub body_limit: usize,

    /// Largest body, in bytes, of a request that carries a story (its content).
    #[arg(
        id = "gateway_story_body_limit",
        long = "gateway-story-body-limit",
        env = "GATEWAY_STORY_BODY_LIMIT",
        default_value_t = 2 << 20
    )]
    pub story_body_limit: usize,

    /// How long to wait for an upstream connection before answering 503.
    #[arg(
        id = "gateway_connect_timeout",
        long = "gateway-connect-timeout",
        env = "GATEWAY_CONNECT_TIMEOUT",
        default_value = "2s",
        value_parser = parse_duration
    )]
    pub connect_timeout: Duration,

    /// The deadline of a call when the client sends no `Grpc-Timeout`.
    #[arg(
        id = "gateway_default_deadline",
        long = "gateway-default-deadline",
        env = "GATEWAY_DEFAULT_DEADLINE",
        default_value = "30s",
        value_parser = parse_duration
    )]
    pub default_deadline: Duration,

    /// The longest deadline a client may ask for with `Grpc-Timeout`.
    #[arg(
        id = "gateway_max_deadline",
        long = "gateway-max-deadline",
        env = "GATEWAY_MAX_DEADLINE",
        default_value = "5m",
        value_parser = parse_duration
    )]
    pub max_deadline: Duration,

    /// Interval of the HTTP/2 keepalive pings on upstream connections.
    #[arg(
        id = "gateway_keepalive",
        long = "gateway-keepalive",
        env = "GATEWAY_KEEPALIVE",
        default_value = "20s",
        value_parser = parse_duration
    )]
    pub keepalive: Duration,

    /// Interval of the comments that keep an event stream open.
    #[arg(
        id = "gateway_heartbeat",
        long = "gateway-heartbeat",
        env = "GATEWAY_HEARTBEAT",
        default_value = "15s",
        value_parser = parse_duration
    )]
    pub heartbeat: Duration,

    /// Origins allowed to call the API from a browser (comma-separated); the
    /// gateway's own origin needs no entry.
    #[arg(
        id = "gateway_cors_origins",
        long = "gateway-cors-origins",
        env = "GATEWAY_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub cors_origins: Vec<String>,

    /// How long browsers may cache a CORS preflight answer.
    #[arg(
        id = "gateway_cors_max_age",
        long = "gateway-cors-max-age",
        env = "GATEWAY_CORS_MAX_AGE",
        default_value = "10m",
        value_parser = parse_duration
    )]
    pub cors_max_age: Duration,

    #[command(flatten)]
    pub rate_limits: RateLimits,
}

/// Token buckets per client IP and per user: a sustained rate per minute and a burst.
#[derive(clap::Args, Clone, Copy, Debug, PartialEq, Eq)]
#[group(id = "gateway_rate_limits")]
pub struct RateLimits {
    /// Turns every rate limit off (benchmarks).
    #[arg(id = "gateway_rate_limits_off", long = "gateway-rate-limits-off", env = "GATEWAY_RATE_LIMITS_OFF")]
    pub off: bool,
    /// Requests per minute from one client IP.
    #[arg(
        id = "gateway_ip_per_minute",
        long = "gateway-ip-per-minute",
        env = "GATEWAY_IP_PER_MINUTE",
        default_value_t = 600
    )]
    pub ip_per_minute: u32,
    /// Requests per minute from one signed-in user.
    #[arg(
        id = "gateway_user_per_minute",
        long = "gateway-user-per-minute",
        env = "GATEWAY_USER_PER_MINUTE",
        default_value_t = 600
    )]
    pub user_per_minute: u32,
    /// Requests per minute from one client IP to /v1/auth/* (sign-up, sign-in).
    #[arg(
        id = "gateway_auth_per_minute",
        long = "gateway-auth-per-minute",
        env = "GATEWAY_AUTH_PER_MINUTE",
        default_value_t = 20
    )]
    pub auth_per_minute: u32,
    /// Jobs per minute one user may create.
    #[arg(
        id = "gateway_jobs_per_minute",
        long = "gateway-jobs-per-minute",
        env = "GATEWAY_JOBS_PER_MINUTE",
        default_value_t = 10
    )]
    pub jobs_per_minute: u32,
    /// How many requests over the rate a bucket lets through at once.
    #[arg(id = "gateway_burst", long = "gateway-burst", env = "GATEWAY_BURST", default_value_t = 20)]
    pub burst: u32,
}

impl Settings {
    /// A gateway on a free loopback port in front of the services at the given URLs,
    /// checking tokens with `token_public_key_file`: what tests start from.
    pub fn for_tests(story_service_url: &str, worker_service_url: &str, token_public_key_file: PathBuf) -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("a socket address"),
            story_service_url: story_service_url.into(),
            worker_service_url: worker_service_url.into(),
            token_public_key_file,
            body_limit: 1 << 20,
            story_body_limit: 2 << 20,
            connect_timeout: Duration::from_secs(1),
            default_deadline: Duration::from_secs(30),
            max_deadline: Duration::from_secs(300),
            keepalive: Duration::from_secs(20),
            heartbeat: Duration::from_secs(15),
            cors_origins: Vec::new(),
            cors_max_age: Duration::from_secs(600),
            rate_limits: RateLimits {
                off: true,
                ip_per_minute: 600,
                user_per_minute: 600,
                auth_per_minute: 20,
                jobs_per_minute: 10,
                burst: 20,
            },
        }
    }
}
