//! A small client of the gateway's REST API, as a browser or a script meets it: JSON
//! in and out, an optional bearer token, every answer read whole; and the account
//! steps most tests start with (register, sign in, model access), over REST.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode, header::HeaderMap};
use serde_json::{Value, json};

use crate::{ADMIN_PASSWORD, ADMIN_USERNAME, PASSWORD};

/// An HTTP client for the gateway. reqwest is built without a TLS crypto provider of
/// its own and wants one installed even for plain HTTP.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("an HTTP client")
}

/// The gateway, called anonymously or with one access token.
#[derive(Clone, Debug)]
pub struct Rest {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// A response, read whole: an empty body is `Null`, a body that is not JSON a string.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// A signed-in user and a client that calls as them.
#[derive(Clone, Debug)]
pub struct RestUser {
    pub id: String,
    pub token: String,
    pub refresh_token: String,
    pub api: Rest,
}

impl Rest {
    /// An anonymous client of the gateway at `base` (`http://host:port`).
    pub fn new(base: String) -> Self {
        Self { http: http_client(), base, token: None }
    }

    /// The same gateway, called with `token`.
    pub fn with_token(&self, token: &str) -> Self {
        Self { token: Some(token.to_owned()), ..self.clone() }
    }

    /// The same gateway, called anonymously.
    pub fn anonymous(&self) -> Self {
        Self { token: None, ..self.clone() }
    }

    /// A request to `path` (from `/v1/…`) with the token, to send as it is.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        answer(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        answer(self.request(Method::POST, path).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        answer(self.request(Method::PATCH, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        answer(self.request(Method::DELETE, path)).await
    }

    /// Registers `username` (email `<username>@example.test`, [`PASSWORD`]).
    pub async fn register(&self, username: &str) -> RestUser {
        let body = json!({"username": username, "email": format!("{username}@example.test"), "password": PASSWORD});
        let signed_in = self.anonymous().post("/v1/auth/register", body).await.expect(StatusCode::OK, "register");
        self.user_of(&signed_in)
    }

    /// Signs in with a username or an email address.
    pub async fn login(&self, login: &str, password: &str) -> RestUser {
        let body = json!({"login": login, "password": password});
        let signed_in = self.anonymous().post("/v1/auth/login", body).await.expect(StatusCode::OK, "login");
        self.user_of(&signed_in)
    }

    /// The administrator the stack was started with.
    pub async fn admin(&self) -> RestUser {
        self.login(ADMIN_USERNAME, ADMIN_PASSWORD).await
    }

    /// Registers `username` and has the administrator grant them model access.
    pub async fn register_with_model_access(&self, username: &str) -> RestUser {
        let user = self.register(username).await;
        self.grant_model_access(&user).await;
        user
    }

    /// The administrator grants `user` model access.
    pub async fn grant_model_access(&self, user: &RestUser) {
        let admin = self.admin().await;
        let path = format!("/v1/admin/users/{}", user.id);
        let updated = admin.api.patch(&path, json!({"gptEnabled": true})).await.expect(StatusCode::OK, "grant");
        assert_eq!(updated["gptEnabled"], true, "{updated}");
    }

    /// A user from an `AuthResponse`.
    fn user_of(&self, signed_in: &Value) -> RestUser {
        let text = |value: &Value| value.as_str().unwrap_or_else(|| panic!("a string: {signed_in}")).to_owned();
        let token = text(&signed_in["accessToken"]);
        RestUser {
            id: text(&signed_in["user"]["id"]),
            api: self.with_token(&token),
            token,
            refresh_token: text(&signed_in["refreshToken"]),
        }
    }
}

/// Sends `request` and reads the answer whole.
pub async fn answer(request: RequestBuilder) -> Answer {
    Answer::read(request.send().await.expect("the gateway answers")).await
}

impl Answer {
    /// Reads `response` whole.
    pub async fn read(response: Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("the body reads");
        let body = match serde_json::from_slice(&bytes) {
            Ok(json) => json,
            Err(_) if bytes.is_empty() => Value::Null,
            Err(_) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
        };
        Self { status, headers, body }
    }

    /// The body, after asserting the status was `status`.
    #[track_caller]
    pub fn expect(self, status: StatusCode, what: &str) -> Value {
        assert_eq!(self.status, status, "{what}: {}", self.body);
        self.body
    }

    /// Asserts this is an error of `status` in the Google JSON shape with gRPC status
    /// name `name` and `ErrorInfo.reason` `reason`.
    #[track_caller]
    pub fn expect_error(&self, status: StatusCode, name: &str, reason: &str, what: &str) {
        crate::expect_json_error(self.status, &self.body, status, name, reason, what);
    }
}

/// The `id` of a resource in JSON.
#[track_caller]
pub fn id_of(resource: &Value) -> String {
    resource["id"].as_str().unwrap_or_else(|| panic!("an id: {resource}")).to_owned()
}
