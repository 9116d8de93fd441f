//! Auth at the edge: each route's declared policy, checked before any upstream call.
//! A missing or invalid token where one is needed is 401, a non-administrator on an
//! ADMIN route 403. The services check again: this is a convenience, not the lock.

use fabula_runtime::{
    auth::{self, AuthPolicy, Caller, Principal, Refusal},
    token::TokenVerifier,
};
use http::{HeaderMap, header};
use tonic::Code;

use crate::errors::ApiError;

/// The cookie that carries an access token for event streams, which a browser's
/// `EventSource` cannot send an `Authorization` header with.
pub const WATCH_COOKIE: &str = "fabula_watch";

/// Checks tokens against story-service's public key.
pub struct EdgeAuth {
    verifier: TokenVerifier,
}

impl EdgeAuth {
    pub fn new(verifier: TokenVerifier) -> Self {
        Self { verifier }
    }

    /// Who calls under `policy` with `token` (already taken out of its header or cookie),
    /// decided as the services decide ([`fabula_runtime::auth`]).
    pub fn caller(&self, policy: AuthPolicy, token: Option<&str>) -> Result<Caller, ApiError> {
        let Some(token) = auth::token_to_verify(policy, token)? else {
            return Ok(Caller::Anonymous);
        };
        let verified = self.verifier.verify(token).map_err(|e| unauthenticated(e.reason(), &e.to_string()))?;
        Ok(auth::admit(policy, Principal::from(&verified))?)
    }
}

impl EdgeAuth {
    /// Seconds until a valid `token` expires.
    pub fn seconds_left(&self, token: &str) -> Option<i64> {
        let verified = self.verifier.verify(token).ok()?;
        Some((verified.expires_at - fabula_runtime::token::unix_now()).max(0))
    }
}

fn unauthenticated(reason: &str, message: &str) -> ApiError {
    ApiError::new(Code::Unauthenticated, message).reason(reason)
}

impl From<Refusal> for ApiError {
    /// The refusal as the gateway answers it, naming the header as HTTP spells it.
    fn from(refusal: Refusal) -> Self {
        ApiError::new(refusal.code(), refusal.message("Authorization")).reason(refusal.reason())
    }
}

/// Where a request's token is: the `Authorization` header or, for event streams, the
/// watch cookie.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenSource<'a> {
    None,
    Header(&'a str),
    Cookie(&'a str),
}

impl<'a> TokenSource<'a> {
    /// The token of `headers`; the cookie only counts when `cookie_allowed`.
    pub fn of(headers: &'a HeaderMap, cookie_allowed: bool) -> Result<Self, ApiError> {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let token = auth::bearer_token(value.as_bytes()).ok_or(Refusal::TokenMalformed)?;
            return Ok(Self::Header(token));
        }
        let cookie = cookie_allowed.then(|| watch_cookie(headers)).flatten();
        Ok(cookie.map_or(Self::None, Self::Cookie))
    }

    pub fn token(&self) -> Option<&'a str> {
        match self {
            Self::None => None,
            Self::Header(t) | Self::Cookie(t) => Some(t),
        }
    }
}

/// The watch cookie's value, if the request has one.
fn watch_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == WATCH_COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_the_header_or_for_streams_the_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=b; fabula_watch=tok".parse().unwrap());
        assert_eq!(TokenSource::of(&headers, false).unwrap(), TokenSource::None);
        assert_eq!(TokenSource::of(&headers, true).unwrap(), TokenSource::Cookie("tok"));
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(TokenSource::of(&headers, true).unwrap(), TokenSource::Header("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(TokenSource::of(&headers, true).is_err());
    }
}
