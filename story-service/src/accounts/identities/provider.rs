//! One OpenID Connect provider as its client sees it: the discovery document and the
//! signing keys (JWKS), fetched when first needed and the keys again when a token names
//! an unknown `kid` (not sooner than the refetch floor after the last fetch); the
//! authorization URL of a code flow; the exchange of a code for an ID token; and the
//! verification of an ID token with jsonwebtoken's JWK support.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use fabula_runtime::{auth::unauthenticated, errors};
use fabula_store::error::{Error, Result, not_found};
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    errors::ErrorKind,
    jwk::{Jwk, JwkSet, KeyAlgorithm},
};
use reqwest::{
    Url,
    header::{ACCEPT, CONTENT_TYPE},
};
use serde::{Deserialize, de::DeserializeOwned};
use tokio::sync::Mutex;
use tonic::Code;

use crate::config::{Oidc, OidcProvider};

/// The configured providers, by name.
pub struct Providers(HashMap<String, Provider>);

impl Providers {
    /// A client of each configured provider; nothing is fetched yet.
    pub fn new(settings: &Oidc) -> Result<Self, reqwest::Error> {
        // rustls needs a process-wide crypto provider; one installed earlier is kept.
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("fabula-story-service/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let providers = settings.providers.iter().map(|provider| {
            let client = Provider {
                settings: provider.clone(),
                http: http.clone(),
                refetch_floor: settings.jwks_refetch_floor,
                discovery: Mutex::default(),
                keys: Mutex::default(),
            };
            (provider.name.clone(), client)
        });
        Ok(Self(providers.collect()))
    }

    /// Provider `name`, or NOT_FOUND.
    pub fn get(&self, name: &str) -> Result<&Provider> {
        self.0.get(name).ok_or_else(|| not_found("OpenID Connect provider"))
    }

    /// Every provider's settings, by name.
    pub fn settings(&self) -> Vec<&OidcProvider> {
        let mut all: Vec<_> = self.0.values().map(|p| &p.settings).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

/// What a verified ID token says of the person.
#[derive(Debug, Deserialize)]
pub struct IdClaims {
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    /// `true`, or Google's older `"true"`.
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

impl IdClaims {
    /// The email address, when the provider says it verified it.
    pub fn verified_email(&self) -> Option<&str> {
        let verified = match &self.email_verified {
            Some(serde_json::Value::Bool(verified)) => *verified,
            Some(serde_json::Value::String(verified)) => verified == "true",
            _ => false,
        };
        self.email.as_deref().filter(|_| verified)
    }
}

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

struct Keys {
    set: JwkSet,
    fetched: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: String,
}

/// A client of one provider, with what it fetched from it.
pub struct Provider {
    pub settings: OidcProvider,
    http: reqwest::Client,
    refetch_floor: Duration,
    discovery: Mutex<Option<Arc<Discovery>>>,
    keys: Mutex<Option<Keys>>,
}

/// UNAUTHENTICATED: the ID token is not one to trust, and `why`.
fn invalid_token(why: &str) -> Error {
    unauthenticated("INVALID_ID_TOKEN", format!("the ID token is refused: {why}")).into()
}

impl Provider {
    /// The URL the browser visits to sign in at the provider, for a code flow with
    /// PKCE (S256 of the verifier: `challenge`), `state` and `nonce`.
    pub async fn authorization_url(&self, state: &str, nonce: &str, challenge: &str) -> Result<String> {
        let discovery = self.discovery().await?;
        let mut url = Url::parse(&discovery.authorization_endpoint)
            .map_err(|e| self.unavailable(format!("its authorization endpoint is no URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.settings.redirect_uri)
            .append_pair("scope", "openid email profile")
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Trades an authorization code (and the PKCE verifier of its flow) for the ID
    /// token, not yet verified. A code the provider refuses is UNAUTHENTICATED.
    pub async fn exchange(&self, code: &str, verifier: &str) -> Result<String> {
        let discovery = self.discovery().await?;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", &self.settings.redirect_uri)
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("client_secret", self.settings.client_secret.expose())
            .append_pair("code_verifier", verifier)
            .finish();
        let request =
            self.http.post(&discovery.token_endpoint).header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        let response = request.header(ACCEPT, "application/json").body(body).send().await;
        let response = response.map_err(|e| self.unavailable(format!("token endpoint: {e}")))?;
        let status = response.status();
        if status.is_client_error() {
            let answer = response.text().await.unwrap_or_default();
            tracing::info!(provider = %self.settings.name, %status, %answer, "the provider refused a code");
            return Err(
                unauthenticated("OIDC_CODE_REFUSED", "the provider refused the sign-in code; sign in again").into()
            );
        }
        if !status.is_success() {
            return Err(self.unavailable(format!("its token endpoint answered {status}")));
        }
        let tokens: TokenResponse =
            response.json().await.map_err(|e| self.unavailable(format!("its token answer is unreadable: {e}")))?;
        Ok(tokens.id_token)
    }

    /// The claims of `token` once its signature (RS256, by a key the provider
    /// publishes), `iss`, `aud`, `exp` and, when `nonce` is given, its `nonce` hold.
    pub async fn verify(&self, token: &str, nonce: Option<&str>) -> Result<IdClaims> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid_token("it is not a JWT"))?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid_token("it is not signed with RS256"));
        }
        let kid = header.kid.ok_or_else(|| invalid_token("it names no key"))?;
        let jwk = self.key(&kid).await?;
        if jwk.common.key_algorithm.is_some_and(|alg| alg != KeyAlgorithm::RS256) {
            return Err(invalid_token("its key is not an RS256 key"));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| invalid_token("its key cannot verify it"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.discovery().await?.issuer]);
        validation.set_audience(&[&self.settings.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<IdClaims>(token, &key, &validation)
            .map_err(|e| invalid_token(refusal(e.kind())))?
            .claims;
        if nonce.is_some_and(|expected| claims.nonce.as_deref() != Some(expected)) {
            return Err(invalid_token("its nonce is not the one this sign-in sent"));
        }
        Ok(claims)
    }

    /// The published key `kid`, fetching the keys again when it is unknown and the
    /// last fetch is older than the refetch floor.
    async fn key(&self, kid: &str) -> Result<Jwk> {
        let jwks_uri = self.discovery().await?.jwks_uri.clone();
        let mut keys = self.keys.lock().await;
        if let Some(jwk) = keys.as_ref().and_then(|keys| keys.set.find(kid)) {
            return Ok(jwk.clone());
        }
        if keys.as_ref().is_some_and(|keys| keys.fetched.elapsed() < self.refetch_floor) {
            return Err(invalid_token("it names a key the provider does not publish"));
        }
        let set: JwkSet = self.get_json(&jwks_uri).await?;
        let found = set.find(kid).cloned();
        *keys = Some(Keys { set, fetched: Instant::now() });
        found.ok_or_else(|| invalid_token("it names a key the provider does not publish"))
    }

    /// The discovery document, fetched once; its issuer must be the configured one.
    async fn discovery(&self) -> Result<Arc<Discovery>> {
        let mut cached = self.discovery.lock().await;
        if let Some(discovery) = cached.as_ref() {
            return Ok(discovery.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.settings.issuer);
        let discovery: Discovery = self.get_json(&url).await?;
        if discovery.issuer.trim_end_matches('/') != self.settings.issuer {
            return Err(self.unavailable(format!("its discovery document names the issuer {:?}", discovery.issuer)));
        }
        let discovery = Arc::new(discovery);
        *cached = Some(discovery.clone());
        Ok(discovery)
    }

    async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T> {
        let response = self.http.get(url).header(ACCEPT, "application/json").send().await;
        let response = response.map_err(|e| self.unavailable(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            return Err(self.unavailable(format!("{url} answered {}", response.status())));
        }
        response.json().await.map_err(|e| self.unavailable(format!("{url} is unreadable: {e}")))
    }

    /// UNAVAILABLE: the provider cannot be asked now; `cause` goes to the log only.
    fn unavailable(&self, cause: String) -> Error {
        tracing::warn!(provider = %self.settings.name, %cause, "OpenID Connect provider unavailable");
        let message = format!("the sign-in provider {} cannot be reached; try again later", self.settings.name);
        errors::status(Code::Unavailable, "OIDC_PROVIDER_UNAVAILABLE", message).into()
    }
}

/// Why jsonwebtoken refused a token, in words for the caller.
fn refusal(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "it has expired",
        ErrorKind::InvalidAudience => "it was issued to another client",
        ErrorKind::InvalidIssuer => "another issuer issued it",
        ErrorKind::InvalidSignature => "its signature does not verify",
        ErrorKind::ImmatureSignature => "it is not valid yet",
        ErrorKind::MissingRequiredClaim(_) => "it lacks a required claim",
        _ => "it is malformed",
    }
}
