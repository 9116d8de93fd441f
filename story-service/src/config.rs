//! story-service's settings: flags with environment fallbacks. Tests build the
//! struct directly; nothing here reads the environment by itself.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use fabula_runtime::config::{Secret, parse_duration};

#[derive(clap::Args, Clone, Debug)]
#[group(id = "story")]
pub struct Settings {
    /// Address the gRPC server listens on (port 0 picks a free one).
    #[arg(id = "story_listen", long = "story-listen", env = "STORY_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Database URL: `sqlite://path?mode=rwc` (embedded) or `postgres://user@host/db`.
    #[arg(
        id = "story_database_url",
        long = "story-database-url",
        env = "STORY_DATABASE_URL",
        default_value = "sqlite://data/story.db?mode=rwc"
    )]
    pub database_url: String,

    /// Most database connections the service opens.
    #[arg(
        id = "story_database_connections",
        long = "story-database-connections",
        env = "STORY_DATABASE_CONNECTIONS",
        default_value_t = 16
    )]
    pub database_connections: u32,

    /// Directory for files the service keeps: the development keys.
    #[arg(long = "data-dir", env = "FABULA_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// PEM file with the Ed25519 private key (PKCS#8) that signs access tokens. When
    /// absent, a development key is generated once and kept in the data directory.
    #[arg(long = "token-private-key-file", env = "STORY_TOKEN_PRIVATE_KEY_FILE")]
    pub token_private_key_file: Option<PathBuf>,

    /// PEM file with the public halves of token keys that were replaced: tokens they
    /// signed are still accepted (until they expire), so a key rotation logs nobody
    /// out. One PEM block per key.
    #[arg(long = "token-retired-public-keys-file", env = "STORY_TOKEN_RETIRED_PUBLIC_KEYS_FILE")]
    pub token_retired_public_keys_file: Option<PathBuf>,

    /// PEM file with gpt-worker's Ed25519 public key (or several, during a rotation of
    /// the worker's key): story-service accepts the tokens it signs to act for job
    /// owners. When absent, the development worker key in the data directory
    /// (generated once) is trusted.
    #[arg(long = "trusted-worker-key-file", env = "STORY_TRUSTED_WORKER_KEY_FILE")]
    pub trusted_worker_key_file: Option<PathBuf>,

    /// How long an access token is valid.
    #[arg(long = "access-token-ttl", env = "STORY_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = parse_duration)]
    pub access_token_ttl: Duration,

    /// How long a refresh token is valid.
    #[arg(long = "refresh-token-ttl", env = "STORY_REFRESH_TOKEN_TTL", default_value = "30d", value_parser = parse_duration)]
    pub refresh_token_ttl: Duration,

    /// Username of an administrator created at start when missing, with model access.
    #[arg(long = "admin-username", env = "FABULA_ADMIN_USERNAME", requires = "admin_password")]
    pub admin_username: Option<String>,

    /// Password of that administrator (10–128 characters).
    #[arg(long = "admin-password", env = "FABULA_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,

    /// Email address of that administrator.
    #[arg(long = "admin-email", env = "FABULA_ADMIN_EMAIL", default_value = "admin@fabula.localhost")]
    pub admin_email: String,

    /// How long a deleted story, entity, location or event can be restored: its
    /// revisions are purged after that.
    #[arg(long = "deleted-retention", env = "STORY_DELETED_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub deleted_retention: Duration,

    /// How long an invitation to a world waits for its answer; inviting again renews it.
    #[arg(long = "invitation-ttl", env = "STORY_INVITATION_TTL", default_value = "14d", value_parser = parse_duration)]
    pub invitation_ttl: Duration,
    /// How long a job's proposal stays open for the author to decide; it expires then
    /// (kept, read-only).
    #[arg(long = "proposal-ttl", env = "STORY_PROPOSAL_TTL", default_value = "30d", value_parser = parse_duration)]
    pub proposal_ttl: Duration,

    #[command(flatten)]
    pub quotas: Quotas,
}

/// How many PUBLIC worlds and stories each role may own. Administrators have no limit.
#[derive(clap::Args, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// Public worlds a USER may own.
    #[arg(long = "quota-public-worlds-user", env = "STORY_QUOTA_PUBLIC_WORLDS_USER", default_value_t = 1)]
    pub public_worlds_user: i64,
    /// Public worlds a MODERATOR may own.
    #[arg(long = "quota-public-worlds-moderator", env = "STORY_QUOTA_PUBLIC_WORLDS_MODERATOR", default_value_t = 20)]
    pub public_worlds_moderator: i64,
    /// Public stories a USER may own.
    #[arg(long = "quota-public-stories-user", env = "STORY_QUOTA_PUBLIC_STORIES_USER", default_value_t = 20)]
    pub public_stories_user: i64,
    /// Public stories a MODERATOR may own.
    #[arg(
        long = "quota-public-stories-moderator",
        env = "STORY_QUOTA_PUBLIC_STORIES_MODERATOR",
        default_value_t = 100
    )]
    pub public_stories_moderator: i64,
}

impl Settings {
    /// Settings for a service on `database_url`, listening on a free loopback port,
    /// with its files in `data_dir`: what tests and embedders start from.
    pub fn for_tests(database_url: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("a socket address"),
            database_url: database_url.into(),
            database_connections: 8,
            data_dir: data_dir.into(),
            token_private_key_file: None,
            token_retired_public_keys_file: None,
            trusted_worker_key_file: None,
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(30 * 86_400),
            admin_username: None,
            admin_password: None,
            admin_email: "admin@fabula.localhost".into(),
            deleted_retention: Duration::from_secs(30 * 86_400),
            invitation_ttl: Duration::from_secs(14 * 86_400),
            proposal_ttl: Duration::from_secs(30 * 86_400),
            quotas: Quotas::default(),
        }
    }
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            public_worlds_user: 1,
            public_worlds_moderator: 20,
            public_stories_user: 20,
            public_stories_moderator: 100,
        }
    }
}
