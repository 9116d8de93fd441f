//! Who is calling, and whether they may: each method's declared [`AuthPolicy`], the
//! [`Caller`] handlers receive, and the tower layer that enforces the policy before a
//! handler runs. Handlers never read headers; they call [`caller`].

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http::{HeaderValue, Request, Response};
use tonic::{Code, Status};
use tower::{Layer, Service};
use tracing::Instrument;
use uuid::Uuid;

pub use crate::pb::fabula::options::v1::AuthPolicy;
use crate::{
    errors,
    metadata::{AUTHORIZATION, REQUEST_ID, RequestId},
    pb::accounts::Role,
    token::TokenVerifier,
};

include!(concat!(env!("OUT_DIR"), "/auth_policies.rs"));

/// A signed-in user, as far as authorisation cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub role: Role,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Who made a call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Caller {
    #[default]
    Anonymous,
    User(Principal),
}

impl Caller {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Self::User(p) => Some(p),
            Self::Anonymous => None,
        }
    }

    pub fn user_id(&self) -> Option<Uuid> {
        self.principal().map(|p| p.user_id)
    }

    pub fn is_admin(&self) -> bool {
        self.principal().is_some_and(Principal::is_admin)
    }

    /// The signed-in user, or UNAUTHENTICATED.
    pub fn require_user(&self) -> Result<&Principal, Status> {
        self.principal().ok_or_else(|| errors::status(Code::Unauthenticated, "TOKEN_MISSING", "sign in first"))
    }
}

/// The caller of a request, as the [`AuthLayer`] found it.
pub fn caller<T>(request: &tonic::Request<T>) -> Caller {
    request.extensions().get::<Caller>().copied().unwrap_or_default()
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Turns a bearer token into a [`Principal`]; each service brings its own checks
/// (story-service also looks the user up, so disabled users are refused at once).
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Principal, Status>>;
}

impl Authenticator for TokenVerifier {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Principal, Status>> {
        let verified = self
            .verify(token)
            .map(|t| Principal { user_id: t.user_id, role: t.role })
            .map_err(|e| unauthenticated(e.reason(), e.to_string()));
        Box::pin(std::future::ready(verified))
    }
}

/// UNAUTHENTICATED with `reason`.
pub fn unauthenticated(reason: &str, message: impl Into<String>) -> Status {
    errors::status(Code::Unauthenticated, reason, message)
}

/// Decides who `path` is being called by, under its declared policy.
async fn authorize(
    authn: &dyn Authenticator,
    path: &str,
    authorization: Option<&HeaderValue>,
) -> Result<Caller, Status> {
    let policy = declared_policy(path).unwrap_or(AuthPolicy::Public);
    if policy == AuthPolicy::Public {
        return Ok(Caller::Anonymous);
    }
    let Some(header) = authorization else {
        return match policy {
            AuthPolicy::Optional => Ok(Caller::Anonymous),
            _ => Err(unauthenticated(
                "TOKEN_MISSING",
                "this call needs an access token: send `authorization: Bearer <token>`",
            )),
        };
    };
    let token = header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthenticated("TOKEN_MALFORMED", "the authorization header must be `Bearer <token>`"))?;
    let principal = authn.authenticate(token).await?;
    if policy == AuthPolicy::Admin && !principal.is_admin() {
        return Err(errors::status(Code::PermissionDenied, "ADMIN_ONLY", "this call is for administrators"));
    }
    Ok(Caller::User(principal))
}

/// The layer every Fabula gRPC server runs: a span carrying the request id, then the
/// method's auth policy, then the handler with a [`Caller`] in its extensions.
#[derive(Clone)]
pub struct AuthLayer {
    authn: Arc<dyn Authenticator>,
}

impl AuthLayer {
    pub fn new(authn: Arc<dyn Authenticator>) -> Self {
        Self { authn }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, authn: self.authn.clone() }
    }
}

/// See [`AuthLayer`].
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    authn: Arc<dyn Authenticator>,
}

impl<S, B, RB> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call; a fresh clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authn = self.authn.clone();
        let request_id = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned);
        let span = tracing::info_span!("rpc", method = %request.uri().path(), request_id = %request_id);
        Box::pin(
            async move {
                let path = request.uri().path().to_owned();
                let decided = authorize(&*authn, &path, request.headers().get(AUTHORIZATION)).await;
                let mut response = match decided {
                    Ok(caller) => {
                        request.extensions_mut().insert(caller);
                        request.extensions_mut().insert(RequestId(request_id.clone()));
                        inner.call(request).await?
                    }
                    Err(status) => {
                        tracing::debug!(code = ?status.code(), "refused before the handler");
                        status.into_http()
                    }
                };
                if let Ok(value) = HeaderValue::from_str(&request_id) {
                    response.headers_mut().insert(REQUEST_ID, value);
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// What a service last learnt of each user (whether they exist, their role, whether
/// they are disabled…), trusted for [`UserStatuses::TTL`] and then asked again: a
/// disabled user's tokens stop working everywhere within that time.
pub struct UserStatuses<V> {
    entries: Mutex<HashMap<Uuid, (Instant, V)>>,
}

impl<V: Copy> Default for UserStatuses<V> {
    fn default() -> Self {
        Self { entries: Mutex::default() }
    }
}

impl<V: Copy> UserStatuses<V> {
    /// How long a status is trusted.
    pub const TTL: Duration = Duration::from_secs(1);
    /// Statuses kept at most before stale ones are dropped.
    const CAPACITY: usize = 100_000;

    /// The status of `user_id`, if learnt less than [`UserStatuses::TTL`] ago.
    pub fn fresh(&self, user_id: Uuid) -> Option<V> {
        let entries = self.entries.lock().expect("user statuses");
        entries.get(&user_id).filter(|(learnt, _)| learnt.elapsed() < Self::TTL).map(|(_, status)| *status)
    }

    /// Remembers `status` of `user_id`, learnt now.
    pub fn remember(&self, user_id: Uuid, status: V) {
        let mut entries = self.entries.lock().expect("user statuses");
        if entries.len() >= Self::CAPACITY {
            entries.retain(|_, (learnt, _)| learnt.elapsed() < Self::TTL);
        }
        entries.insert(user_id, (Instant::now(), status));
    }

    /// Forgets `user_id`, after a change to their account.
    pub fn forget(&self, user_id: Uuid) {
        self.entries.lock().expect("user statuses").remove(&user_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_trusted_until_forgotten() {
        let statuses = UserStatuses::default();
        let user = Uuid::now_v7();
        assert_eq!(statuses.fresh(user), None);
        statuses.remember(user, 7);
        assert_eq!(statuses.fresh(user), Some(7));
        statuses.forget(user);
        assert_eq!(statuses.fresh(user), None);
    }

    #[test]
    fn every_method_has_a_policy_and_unknown_paths_have_none() {
        assert_eq!(declared_policy("/fabula.accounts.v1.AccountService/Register"), Some(AuthPolicy::Public));
        assert_eq!(declared_policy("/fabula.story.v1.WorldService/GetWorld"), Some(AuthPolicy::Optional));
        assert_eq!(declared_policy("/fabula.story.v1.WorldService/CreateWorld"), Some(AuthPolicy::User));
        assert_eq!(declared_policy("/fabula.accounts.v1.AccountService/ListUsers"), Some(AuthPolicy::Admin));
        assert_eq!(declared_policy("/grpc.health.v1.Health/Check"), None);
    }
}
