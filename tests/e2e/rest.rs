//! A small client of the gateway's REST API, as a browser or a script meets it: JSON
//! in and out, an optional bearer token, every answer read whole. Also the few
//! account steps most tests start with (register, sign in, model access).

use reqwest::{Method, RequestBuilder, StatusCode, header::HeaderMap};
use serde_json::{Value, json};

use crate::stack::{self, ADMIN_PASSWORD, ADMIN_USERNAME, Running};

/// The password of every user the tests register.
pub const PASSWORD: &str = "correct horse battery staple";

/// The gateway, called anonymously or with one access token.
#[derive(Clone)]
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
pub struct User {
    pub id: String,
    pub access_token: String,
    pub refresh_token: String,
    pub api: Rest,
}

impl Rest {
    /// An anonymous client of `running`'s gateway.
    pub fn new(running: &Running) -> Self {
        Self { http: stack::http_client(), base: running.base_url(), token: None }
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
    pub async fn register(&self, username: &str) -> User {
        let body = json!({"username": username, "email": format!("{username}@example.test"), "password": PASSWORD});
        let signed_in = self.anonymous().post("/v1/auth/register", body).await.expect(StatusCode::OK, "register");
        self.user_of(&signed_in)
    }

    /// Signs in with a username or an email address.
    pub async fn login(&self, login: &str, password: &str) -> User {
        let body = json!({"login": login, "password": password});
        let signed_in = self.anonymous().post("/v1/auth/login", body).await.expect(StatusCode::OK, "login");
        self.user_of(&signed_in)
    }

    /// The administrator the stack was started with.
    pub async fn admin(&self) -> User {
        self.login(ADMIN_USERNAME, ADMIN_PASSWORD).await
    }

    /// The administrator grants `user` model access.
    pub async fn grant_model_access(&self, user: &User) {
        let admin = self.admin().await;
        let path = format!("/v1/admin/users/{}", user.id);
        let updated = admin.api.patch(&path, json!({"gptEnabled": true})).await.expect(StatusCode::OK, "grant");
        assert_eq!(updated["gptEnabled"], true, "{updated}");
    }

    /// A user from an `AuthResponse`.
    fn user_of(&self, signed_in: &Value) -> User {
        let text = |value: &Value| value.as_str().unwrap_or_else(|| panic!("a string: {signed_in}")).to_owned();
        let access_token = text(&signed_in["accessToken"]);
        User {
            id: text(&signed_in["user"]["id"]),
            api: self.with_token(&access_token),
            access_token,
            refresh_token: text(&signed_in["refreshToken"]),
        }
    }
}

/// Sends `request` and reads the answer whole.
pub async fn answer(request: RequestBuilder) -> Answer {
    let response = request.send().await.expect("the gateway answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("the body reads");
    let body = match serde_json::from_slice(&bytes) {
        Ok(json) => json,
        Err(_) if bytes.is_empty() => Value::Null,
        Err(_) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
    };
    Answer { status, headers, body }
}

impl Answer {
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
        fabula_testkit::expect_json_error(self.status, &self.body, status, name, reason, what);
    }
}

/// The `id` of a resource in JSON.
#[track_caller]
pub fn id_of(resource: &Value) -> String {
    resource["id"].as_str().unwrap_or_else(|| panic!("an id: {resource}")).to_owned()
}
