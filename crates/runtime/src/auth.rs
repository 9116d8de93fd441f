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

use fabula_contracts::pb::accounts::Role;
pub use fabula_contracts::policies::{AuthPolicy, declared_policy};

use crate::{
    errors,
    metadata::{self, AUTHORIZATION, REQUEST_ID, RequestId},
    token::{TokenVerifier, VerifiedToken},
};

/// A signed-in user, as far as authorisation cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub role: Role,
    /// The job a trusted service runs for the user, when it made the call for one.
    pub job_id: Option<Uuid>,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

impl From<&VerifiedToken> for Principal {
    fn from(token: &VerifiedToken) -> Self {
        Self { user_id: token.user_id, role: token.role, job_id: token.job_id }
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
        let verified =
            self.verify(token).map(|t| Principal::from(&t)).map_err(|e| unauthenticated(e.reason(), e.to_string()));
        Box::pin(std::future::ready(verified))
    }
}

/// UNAUTHENTICATED with `reason`.
pub fn unauthenticated(reason: &str, message: impl Into<String>) -> Status {
    errors::status(Code::Unauthenticated, reason, message)
}

/// The token of an authorization value `Bearer <token>`, read as RFC 9110 §11.4 and
/// RFC 6750 §2.1 write it: the scheme in any case, one or more spaces (not tabs), then
/// a `b64token`; whitespace around the whole value is not part of it (§5.5). `None`
/// when the value is anything else. Services and the gateway both read the header
/// with it.
pub fn bearer_token(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?.trim_matches([' ', '\t']);
    let (scheme, rest) = value.split_once(' ')?;
    let token = rest.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && is_b64token(token)).then_some(token)
}

/// Whether `text` is a `b64token`: letters, digits and `-._~+/`, then any `=` padding.
fn is_b64token(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// Why a method's auth policy refuses a call, before or after its token is verified.
/// Services answer a [`Status`] ([`Refusal::into_status`]); the gateway its own error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The method needs a token and none was sent.
    TokenMissing,
    /// The authorization header is not `Bearer <token>`.
    TokenMalformed,
    /// The method is for administrators and the caller is not one.
    AdminOnly,
}

impl Refusal {
    pub fn code(self) -> Code {
        match self {
            Self::TokenMissing | Self::TokenMalformed => Code::Unauthenticated,
            Self::AdminOnly => Code::PermissionDenied,
        }
    }

    /// The stable `ErrorInfo.reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::TokenMissing => "TOKEN_MISSING",
            Self::TokenMalformed => "TOKEN_MALFORMED",
            Self::AdminOnly => "ADMIN_ONLY",
        }
    }

    /// What the caller is told, naming the header as the caller spells it
    /// (`authorization` in gRPC metadata, `Authorization` over HTTP).
    pub fn message(self, header: &str) -> String {
        match self {
            Self::TokenMissing => format!("this call needs an access token: send `{header}: Bearer <token>`"),
            Self::TokenMalformed => format!("the {header} header must be `Bearer <token>`"),
            Self::AdminOnly => "this call is for administrators".to_owned(),
        }
    }

    /// The refusal as a service answers it.
    pub fn into_status(self) -> Status {
        errors::status(self.code(), self.reason(), self.message(AUTHORIZATION))
    }
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Self {
        refusal.into_status()
    }
}

/// The first half of a method's auth policy, before any token is verified: whether a
/// call under `policy` presenting `token` goes on anonymously (`Ok(None)`), is refused,
/// or goes on once `token` is verified and [`admit`]ted (`Ok(Some(token))`).
pub fn token_to_verify(policy: AuthPolicy, token: Option<&str>) -> Result<Option<&str>, Refusal> {
    match (policy, token) {
        (AuthPolicy::Public, _) | (AuthPolicy::Optional, None) => Ok(None),
        (_, None) => Err(Refusal::TokenMissing),
        (_, Some(token)) => Ok(Some(token)),
    }
}

/// The second half: the caller that `principal`, verified from the token, is under
/// `policy`.
pub fn admit(policy: AuthPolicy, principal: Principal) -> Result<Caller, Refusal> {
    if policy == AuthPolicy::Admin && !principal.is_admin() {
        return Err(Refusal::AdminOnly);
    }
    Ok(Caller::User(principal))
}

/// Decides who `path` is being called by, under its declared policy. A public method
/// does not look at the authorization header at all.
async fn authorize(
    authn: &dyn Authenticator,
    path: &str,
    authorization: Option<&HeaderValue>,
) -> Result<Caller, Status> {
    let policy = declared_policy(path).unwrap_or(AuthPolicy::Public);
    if policy == AuthPolicy::Public {
        return Ok(Caller::Anonymous);
    }
    let token = authorization.map(|h| bearer_token(h.as_bytes()).ok_or(Refusal::TokenMalformed)).transpose()?;
    match token_to_verify(policy, token)? {
        None => Ok(Caller::Anonymous),
        Some(token) => Ok(admit(policy, authn.authenticate(token).await?)?),
    }
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
        let request_id = metadata::request_id(request.headers());
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
/// disabled user's tokens stop working everywhere within that time. Keyed by user id,
/// or by anything else a status is learnt for (gpt-worker confirms each token).
pub struct UserStatuses<V, K = Uuid> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<V: Copy, K> Default for UserStatuses<V, K> {
    fn default() -> Self {
        Self { entries: Mutex::new(HashMap::new()) }
    }
}

impl<V: Copy, K: Eq + std::hash::Hash> UserStatuses<V, K> {
    /// How long a status is trusted.
    pub const TTL: Duration = Duration::from_secs(1);
    /// Statuses kept at most before stale ones are dropped.
    const CAPACITY: usize = 100_000;

    /// The status of `key`, if learnt less than [`UserStatuses::TTL`] ago.
    pub fn fresh<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + std::hash::Hash + ?Sized,
    {
        let entries = self.entries.lock().expect("user statuses");
        entries.get(key).filter(|(learnt, _)| learnt.elapsed() < Self::TTL).map(|(_, status)| *status)
    }

    /// Remembers `status` of `key`, learnt now.
    pub fn remember(&self, key: K, status: V) {
        let mut entries = self.entries.lock().expect("user statuses");
        if entries.len() >= Self::CAPACITY {
            entries.retain(|_, (learnt, _)| learnt.elapsed() < Self::TTL);
        }
        entries.insert(key, (Instant::now(), status));
    }

    /// Forgets `key`, after a change to their account.
    pub fn forget<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + std::hash::Hash + ?Sized,
    {
        self.entries.lock().expect("user statuses").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_trusted_until_forgotten() {
        let statuses = UserStatuses::default();
        let user = Uuid::now_v7();
        assert_eq!(statuses.fresh(&user), None);
        statuses.remember(user, 7);
        assert_eq!(statuses.fresh(&user), Some(7));
        statuses.forget(&user);
        assert_eq!(statuses.fresh(&user), None);
    }

    #[test]
    fn a_bearer_token_is_read_from_its_header_value() {
        struct Case {
            why: &'static str,
            value: &'static [u8],
            token: Option<&'static str>,
        }
        let cases = [
            Case { why: "the usual spelling", value: b"Bearer abc", token: Some("abc") },
            Case { why: "the scheme in lower case", value: b"bearer abc", token: Some("abc") },
            Case { why: "the scheme in upper case", value: b"BEARER abc", token: Some("abc") },
            Case { why: "the scheme in mixed case", value: b"BeArEr abc", token: Some("abc") },
            Case { why: "several spaces after the scheme", value: b"Bearer   abc", token: Some("abc") },
            Case { why: "whitespace around the value", value: b" Bearer abc \t", token: Some("abc") },
            Case { why: "a JWT", value: b"Bearer eyJ0.eyJz-_.c2ln", token: Some("eyJ0.eyJz-_.c2ln") },
            Case { why: "padding at the end", value: b"Bearer a+b/c~==", token: Some("a+b/c~==") },
            Case { why: "a tab after the scheme", value: b"Bearer\tabc", token: None },
            Case { why: "no space after the scheme", value: b"Bearerabc", token: None },
            Case { why: "no token", value: b"Bearer ", token: None },
            Case { why: "the scheme alone", value: b"Bearer", token: None },
            Case { why: "another scheme", value: b"Basic abc", token: None },
            Case { why: "no scheme", value: b"abc", token: None },
            Case { why: "a space in the token", value: b"Bearer abc def", token: None },
            Case { why: "padding inside the token", value: b"Bearer ab=c", token: None },
            Case { why: "not UTF-8", value: b"Bearer \xff", token: None },
        ];
        for case in cases {
            assert_eq!(bearer_token(case.value), case.token, "{}", case.why);
        }
    }

    #[test]
    fn each_policy_decides_as_declared() {
        use AuthPolicy::*;
        let user = Principal { user_id: Uuid::now_v7(), role: Role::User, job_id: None };
        let admin = Principal { role: Role::Admin, ..user };
        // (policy, token, verified principal, decision)
        let cases = [
            (Public, None, None, Ok(Caller::Anonymous)),
            (Public, Some("t"), None, Ok(Caller::Anonymous)),
            (Optional, None, None, Ok(Caller::Anonymous)),
            (Optional, Some("t"), Some(user), Ok(Caller::User(user))),
            (User, None, None, Err(Refusal::TokenMissing)),
            (User, Some("t"), Some(user), Ok(Caller::User(user))),
            (Admin, None, None, Err(Refusal::TokenMissing)),
            (Admin, Some("t"), Some(user), Err(Refusal::AdminOnly)),
            (Admin, Some("t"), Some(admin), Ok(Caller::User(admin))),
        ];
        for (policy, token, principal, want) in cases {
            let decided = token_to_verify(policy, token).and_then(|verify| match verify {
                None => Ok(Caller::Anonymous),
                Some(_) => admit(policy, principal.expect("a token to verify")),
            });
            assert_eq!(decided, want, "{policy:?} with {token:?}");
        }
    }

    #[test]
    fn refusals_name_the_header_as_the_caller_spells_it() {
        let status = Refusal::TokenMissing.into_status();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), "this call needs an access token: send `authorization: Bearer <token>`");
        assert_eq!(
            Refusal::TokenMalformed.message("Authorization"),
            "the Authorization header must be `Bearer <token>`"
        );
        assert_eq!(Refusal::AdminOnly.code(), Code::PermissionDenied);
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
