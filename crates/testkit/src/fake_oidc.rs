//! The fake OpenID Connect provider: real HTTP on loopback, serving a discovery
//! document, its keys (JWKS, RS256, from fixed test keys in `fixtures/oidc`), an
//! authorization endpoint that signs in the person the test names and sends the
//! browser back with a code, and a token endpoint that trades a code once, for the
//! right client, redirect URI and PKCE verifier, for an ID token. The test can rotate
//! the keys, sign tokens with any key (a forger's too) and count the JWKS fetches.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    extract::{RawQuery, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Server;

/// The client id the fake provider knows Fabula by.
pub const CLIENT_ID: &str = "fabula-test-client";
/// That client's secret.
pub const CLIENT_SECRET: &str = "fabula-test-secret";

/// The fixed test keys (2048-bit RSA): the provider's two, and one nobody publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestKey {
    A,
    B,
    Forger,
}

impl TestKey {
    pub fn kid(self) -> &'static str {
        match self {
            Self::A => "test-a",
            Self::B => "test-b",
            Self::Forger => "test-forger",
        }
    }

    fn pem(self) -> &'static [u8] {
        match self {
            Self::A => include_bytes!("../fixtures/oidc/a.pem"),
            Self::B => include_bytes!("../fixtures/oidc/b.pem"),
            Self::Forger => include_bytes!("../fixtures/oidc/forger.pem"),
        }
    }

    fn jwk(self) -> Value {
        let text = match self {
            Self::A => include_str!("../fixtures/oidc/a.jwk.json"),
            Self::B => include_str!("../fixtures/oidc/b.jwk.json"),
            Self::Forger => include_str!("../fixtures/oidc/forger.jwk.json"),
        };
        serde_json::from_str(text).expect("a test JWK is JSON")
    }

    /// `claims` signed with this key, its header naming `kid`.
    pub fn sign(self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        let key = EncodingKey::from_rsa_pem(self.pem()).expect("a test key is an RSA PEM");
        jsonwebtoken::encode(&header, claims, &key).expect("claims sign")
    }
}

/// Where the provider sent the browser back.
#[derive(Debug)]
pub struct Callback {
    pub code: String,
    pub state: String,
}

/// A code handed out and not yet traded.
struct Grant {
    claims: Value,
    challenge: String,
    redirect_uri: String,
}

struct Provider {
    issuer: String,
    published: Vec<TestKey>,
    signing: TestKey,
    /// Who signs in at the next authorization.
    person: Option<Value>,
    codes: HashMap<String, Grant>,
    jwks_fetches: usize,
}

type Shared = Arc<Mutex<Provider>>;

/// A running fake provider. Stopped when dropped.
pub struct FakeOidc {
    pub issuer: String,
    provider: Shared,
    http: reqwest::Client,
    _server: Server,
}

impl FakeOidc {
    /// Starts a provider publishing key A and signing with it.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let addr: SocketAddr = listener.local_addr().expect("a bound address");
        let issuer = format!("http://{addr}");
        let provider = Arc::new(Mutex::new(Provider {
            issuer: issuer.clone(),
            published: vec![TestKey::A],
            signing: TestKey::A,
            person: None,
            codes: HashMap::new(),
            jwks_fetches: 0,
        }));
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(provider.clone());
        let server = Server::spawn("fake OpenID provider", |shutdown| async move {
            axum::serve(listener, router).with_graceful_shutdown(shutdown).await
        });
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("an HTTP client");
        Self { issuer, provider, http, _server: server }
    }

    fn provider(&self) -> std::sync::MutexGuard<'_, Provider> {
        self.provider.lock().expect("the fake provider's state")
    }

    /// Valid claims of an ID token for person `sub` with the verified `email`.
    pub fn claims(&self, sub: &str, email: &str) -> Value {
        let now = fabula_runtime::token::unix_now();
        json!({
            "iss": self.issuer, "aud": CLIENT_ID, "sub": sub, "iat": now, "exp": now + 600,
            "email": email, "email_verified": true, "name": format!("Person {sub}"),
        })
    }

    /// `claims` signed as the provider signs now.
    pub fn id_token(&self, claims: &Value) -> String {
        let key = self.provider().signing;
        key.sign(key.kid(), claims)
    }

    /// Publishes key B beside A and signs with B from now on.
    pub fn rotate(&self) {
        let mut provider = self.provider();
        provider.published = vec![TestKey::A, TestKey::B];
        provider.signing = TestKey::B;
    }

    /// How many times the keys were fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.provider().jwks_fetches
    }

    /// Has `person` (claims without `nonce`) sign in at the next authorization, as a
    /// browser's visit would have them.
    pub fn sign_in_next(&self, person: Value) {
        self.provider().person = Some(person);
    }

    /// The browser's visit to `authorization_url` with `person` (claims without
    /// `nonce`) signing in there: where the provider sends the browser back.
    pub async fn authorize(&self, authorization_url: &str, person: Value) -> Callback {
        self.sign_in_next(person);
        let response = self.http.get(authorization_url).send().await.expect("the authorization endpoint answers");
        assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER, "authorization refused: {response:?}");
        let location = response.headers()[header::LOCATION.as_str()].to_str().expect("a text Location").to_owned();
        let query = reqwest::Url::parse(&location).expect("a URL in Location");
        let pairs: HashMap<_, _> = query.query_pairs().into_owned().collect();
        Callback { code: pairs["code"].clone(), state: pairs["state"].clone() }
    }
}

async fn discovery(State(provider): State<Shared>) -> Response {
    let issuer = provider.lock().expect("state").issuer.clone();
    let document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
    });
    json_response(StatusCode::OK, &document)
}

async fn jwks(State(provider): State<Shared>) -> Response {
    let mut provider = provider.lock().expect("state");
    provider.jwks_fetches += 1;
    let keys: Vec<Value> = provider.published.iter().map(|key| key.jwk()).collect();
    json_response(StatusCode::OK, &json!({ "keys": keys }))
}

/// Checks the request, then hands back a code for the person the test named.
async fn authorize(State(provider): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let query = pairs(query.as_deref().unwrap_or_default());
    let param = |name: &str| query.get(name).cloned().unwrap_or_default();
    if param("response_type") != "code" || param("client_id") != CLIENT_ID || param("code_challenge_method") != "S256" {
        return (StatusCode::BAD_REQUEST, "not a code flow with PKCE for the test client").into_response();
    }
    let mut provider = provider.lock().expect("state");
    let Some(mut claims) = provider.person.take() else {
        return (StatusCode::BAD_REQUEST, "nobody signs in").into_response();
    };
    claims["nonce"] = Value::String(param("nonce"));
    let code = uuid::Uuid::new_v4().to_string();
    let grant = Grant { claims, challenge: param("code_challenge"), redirect_uri: param("redirect_uri") };
    provider.codes.insert(code.clone(), grant);
    let back = form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &code)
        .append_pair("state", &param("state"))
        .finish();
    let location = format!("{}?{back}", param("redirect_uri"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// Trades a code, once, for the client with its secret, the code's redirect URI and
/// the verifier of its PKCE challenge.
async fn token(State(provider): State<Shared>, body: String) -> Response {
    let form = pairs(&body);
    let param = |name: &str| form.get(name).cloned().unwrap_or_default();
    let mut provider = provider.lock().expect("state");
    let grant = provider.codes.remove(&param("code"));
    let verified = grant.as_ref().is_some_and(|grant| {
        param("grant_type") == "authorization_code"
            && param("client_id") == CLIENT_ID
            && param("client_secret") == CLIENT_SECRET
            && param("redirect_uri") == grant.redirect_uri
            && URL_SAFE_NO_PAD.encode(Sha256::digest(param("code_verifier").as_bytes())) == grant.challenge
    });
    let Some(grant) = grant.filter(|_| verified) else {
        return json_response(StatusCode::BAD_REQUEST, &json!({ "error": "invalid_grant" }));
    };
    let key = provider.signing;
    let id_token = key.sign(key.kid(), &grant.claims);
    let answer = json!({ "access_token": "fake", "token_type": "Bearer", "expires_in": 600, "id_token": id_token });
    json_response(StatusCode::OK, &answer)
}

fn pairs(text: &str) -> HashMap<String, String> {
    form_urlencoded::parse(text.as_bytes()).into_owned().collect()
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}
