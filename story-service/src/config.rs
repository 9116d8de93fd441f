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

    #[command(flatten)]
    pub oidc: Oidc,
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
            oidc: Oidc::default(),
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

/// Signing in with OpenID Connect providers.
#[derive(clap::Args, Clone, Debug)]
pub struct Oidc {
    /// The OpenID Connect providers people may sign in with, separated by `;`, each
    /// `name=google,issuer=https://accounts.google.com,client_id=…,client_secret=…,redirect_uri=https://…/signin/oidc/google`.
    /// The issuer is HTTPS (plain HTTP only on loopback, for tests).
    #[arg(
        id = "oidc_providers",
        long = "oidc-provider",
        env = "STORY_OIDC_PROVIDERS",
        value_delimiter = ';',
        value_parser = OidcProvider::parse,
        hide_env_values = true
    )]
    pub providers: Vec<OidcProvider>,

    /// How long after fetching a provider's keys a token naming an unknown key may
    /// make them be fetched again: a flood of made-up key ids costs the provider one
    /// request per this period.
    #[arg(
        id = "oidc_jwks_refetch_floor",
        long = "oidc-jwks-refetch-floor",
        env = "STORY_OIDC_JWKS_REFETCH_FLOOR",
        default_value = "60s",
        value_parser = parse_duration
    )]
    pub jwks_refetch_floor: Duration,
}

impl Default for Oidc {
    fn default() -> Self {
        Self { providers: Vec::new(), jwks_refetch_floor: Duration::from_secs(60) }
    }
}

/// One OpenID Connect provider: the client Fabula is registered as there.
#[derive(Clone, Debug)]
pub struct OidcProvider {
    /// The name in Fabula's URLs (`/v1/auth/oidc/{name}/…`): letters, digits, `_`, `-`.
    pub name: String,
    /// The issuer URL, as the provider's ID tokens name it in `iss`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Where the provider sends the browser back: the page's callback.
    pub redirect_uri: String,
}

impl OidcProvider {
    /// Parses `name=…,issuer=…,client_id=…,client_secret=…,redirect_uri=…`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut fields = std::collections::HashMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| format!("{pair:?} is not key=value"))?;
            fields.insert(key.trim(), value.trim().to_owned());
        }
        let mut take = |key: &str| fields.remove(key).filter(|v| !v.is_empty()).ok_or(format!("no {key} given"));
        let provider = Self {
            name: take("name")?,
            issuer: take("issuer")?.trim_end_matches('/').to_owned(),
            client_id: take("client_id")?,
            client_secret: Secret::new(take("client_secret")?),
            redirect_uri: take("redirect_uri")?,
        };
        if let Some(unknown) = fields.keys().next() {
            return Err(format!("unknown provider setting {unknown:?}"));
        }
        if !provider.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("provider name {:?} is not letters, digits, _ and -", provider.name));
        }
        check_issuer(&provider.issuer)?;
        Ok(provider)
    }
}

/// HTTPS, or plain HTTP to a loopback host (a test's provider).
fn check_issuer(issuer: &str) -> Result<(), String> {
    let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
    if issuer.starts_with("https://") || loopback.iter().any(|prefix| issuer.starts_with(prefix)) {
        Ok(())
    } else {
        Err(format!("issuer {issuer:?} is not an https:// URL"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_parses_and_hides_its_secret() {
        let text = "name=google, issuer=https://accounts.google.com/, client_id=id, client_secret=s3cret, \
                    redirect_uri=https://fabula.example/signin/oidc/google";
        let provider = OidcProvider::parse(text).unwrap();
        assert_eq!(provider.issuer, "https://accounts.google.com");
        assert_eq!(provider.client_secret.expose(), "s3cret");
        assert!(!format!("{provider:?}").contains("s3cret"), "the secret printed: {provider:?}");
    }

    #[test]
    fn bad_providers_are_refused() {
        let good = "name=g,issuer=https://a.example,client_id=i,client_secret=s,redirect_uri=https://f.example/cb";
        let bad = [
            (good.replace("name=g,", ""), "no name"),
            (good.replace("name=g", "name=a b"), "a space in the name"),
            (good.replace("https://a.example", "http://a.example"), "plain HTTP off loopback"),
            (good.replace("client_secret=s", "client_secret="), "an empty secret"),
            (format!("{good},scope=x"), "an unknown setting"),
            (good.replace(",client_id=i", ",client_id"), "no value"),
        ];
        for (text, why) in bad {
            assert!(OidcProvider::parse(&text).is_err(), "{text:?} was accepted ({why})");
        }
    }
}
