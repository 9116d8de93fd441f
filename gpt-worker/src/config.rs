//! gpt-worker's settings: flags with environment fallbacks. Tests build the struct
//! directly; nothing here reads the environment by itself.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use fabula_runtime::{
    config::{Secret, parse_duration},
    keys,
};

#[derive(clap::Args, Clone, Debug)]
#[group(id = "worker")]
pub struct Settings {
    /// Address the gRPC server listens on (port 0 picks a free one).
    #[arg(id = "worker_listen", long = "worker-listen", env = "WORKER_LISTEN", default_value = "127.0.0.1:50052")]
    pub listen: SocketAddr,

    /// Database URL of the job queue: `sqlite://path?mode=rwc` or `postgres://…`.
    #[arg(
        id = "worker_database_url",
        long = "worker-database-url",
        env = "WORKER_DATABASE_URL",
        default_value = "sqlite://data/worker.db?mode=rwc"
    )]
    pub database_url: String,

    /// Most database connections the worker opens.
    #[arg(
        id = "worker_database_connections",
        long = "worker-database-connections",
        env = "WORKER_DATABASE_CONNECTIONS",
        default_value_t = 16
    )]
    pub database_connections: u32,

    /// story-service's gRPC address.
    #[arg(long = "story-service-url", env = "STORY_SERVICE_URL", default_value = "http://127.0.0.1:50051")]
    pub story_service_url: String,

    /// PEM file with story-service's Ed25519 public key, to verify access tokens; during
    /// a key rotation, the new key and the retired one (one PEM block each). The
    /// default is the development key story-service keeps in its data directory.
    #[arg(
        long = "token-public-key-file",
        env = "WORKER_TOKEN_PUBLIC_KEY_FILE",
        default_value = "data/token-ed25519.pub.pem"
    )]
    pub token_public_key_file: PathBuf,

    /// PEM file with the worker's own Ed25519 private key, which signs the delegated
    /// tokens it acts for job owners with; story-service must trust its public half.
    /// The default is the development key story-service generates beside its own.
    #[arg(
        long = "worker-private-key-file",
        env = "WORKER_PRIVATE_KEY_FILE",
        default_value = "data/worker-ed25519.pem"
    )]
    pub private_key_file: PathBuf,

    #[command(flatten)]
    pub llm: LlmSettings,

    #[command(flatten)]
    pub queue: QueueSettings,
}

/// The language model. With neither a base URL nor a key, the offline model runs; a
/// key alone means OpenAI's API.
#[derive(clap::Args, Clone, Debug)]
pub struct LlmSettings {
    /// OpenAI-compatible API base, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`.
    #[arg(long = "llm-base-url", env = "LLM_BASE_URL")]
    pub base_url: Option<String>,
    /// API key, sent as a bearer token.
    #[arg(long = "llm-api-key", env = "LLM_API_KEY", hide_env_values = true)]
    pub api_key: Option<Secret>,
    /// Model name.
    #[arg(long = "llm-model", env = "LLM_MODEL", default_value = "gpt-4o-mini")]
    pub model: String,
    /// Time allowed to connect to the model's server.
    #[arg(long = "llm-connect-timeout", env = "LLM_CONNECT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Time allowed for one whole model call.
    #[arg(long = "llm-request-timeout", env = "LLM_REQUEST_TIMEOUT", default_value = "180s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Longest silence allowed between two streamed chunks.
    #[arg(long = "llm-idle-timeout", env = "LLM_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// The offline model's pause before each few words it writes, to watch a job stream
    /// in as a real model's would (0s: it writes at once).
    #[arg(long = "llm-offline-pace", env = "LLM_OFFLINE_PACE", default_value = "0s", value_parser = parse_duration)]
    pub offline_pace: Duration,
}

/// The queue and its runners.
#[derive(clap::Args, Clone, Debug)]
pub struct QueueSettings {
    /// Jobs this process runs at once.
    #[arg(long = "worker-runners", env = "WORKER_RUNNERS", default_value_t = 4)]
    pub runners: usize,
    /// How long a claimed job stays this worker's without a heartbeat.
    #[arg(long = "worker-lease", env = "WORKER_LEASE", default_value = "30s", value_parser = parse_duration)]
    pub lease: Duration,
    /// Attempts a job gets before it fails.
    #[arg(long = "worker-max-attempts", env = "WORKER_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles, with jitter.
    #[arg(long = "worker-retry-base", env = "WORKER_RETRY_BASE", default_value = "1s", value_parser = parse_duration)]
    pub retry_base: Duration,
    /// The longest retry delay.
    #[arg(long = "worker-retry-max", env = "WORKER_RETRY_MAX", default_value = "60s", value_parser = parse_duration)]
    pub retry_max: Duration,
    /// How long SIGTERM waits for running jobs before handing them back to the queue.
    #[arg(long = "worker-shutdown-grace", env = "WORKER_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// How long finished jobs are kept.
    #[arg(long = "worker-retention", env = "WORKER_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub retention: Duration,
    /// Queued and running jobs one user may have at once.
    #[arg(long = "worker-active-jobs-per-user", env = "WORKER_ACTIVE_JOBS_PER_USER", default_value_t = 3)]
    pub active_jobs_per_user: i64,
    /// Jobs one user may create in 24 hours.
    #[arg(long = "worker-daily-jobs-per-user", env = "WORKER_DAILY_JOBS_PER_USER", default_value_t = 200)]
    pub daily_jobs_per_user: i64,
}

impl Settings {
    /// Settings for a worker on `database_url` talking to `story_service_url`, on a free
    /// loopback port, with the offline model and short timings: what tests start from.
    pub fn for_tests(
        database_url: impl Into<String>,
        story_service_url: impl Into<String>,
        data_dir: &std::path::Path,
    ) -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("a socket address"),
            database_url: database_url.into(),
            database_connections: 8,
            story_service_url: story_service_url.into(),
            token_public_key_file: data_dir.join(keys::ACCOUNTS_PUBLIC_KEY_FILE),
            private_key_file: data_dir.join(keys::WORKER_KEY_FILE),
            llm: LlmSettings {
                base_url: None,
                api_key: None,
                model: "gpt-4o-mini".into(),
                connect_timeout: Duration::from_secs(2),
                request_timeout: Duration::from_secs(10),
                idle_timeout: Duration::from_secs(5),
                offline_pace: Duration::ZERO,
            },
            queue: QueueSettings {
                runners: 4,
                lease: Duration::from_secs(5),
                max_attempts: 3,
                retry_base: Duration::from_millis(50),
                retry_max: Duration::from_secs(1),
                shutdown_grace: Duration::from_secs(5),
                retention: Duration::from_secs(7 * 86_400),
                active_jobs_per_user: 3,
                daily_jobs_per_user: 200,
            },
        }
    }
}
