//! Auth at the edge: each route's declared policy, checked before any upstream call.
//! A missing or invalid token where one is needed is 401, a non-administrator on an
//! ADMIN route 403. The services check again: this is a convenience, not the lock.

use fabula_proto::{
    auth::{AuthPolicy, Caller, Principal},
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

    /// Who calls under `policy` with `token` (already taken out of its header or cookie).
    pub fn caller(&self, policy: AuthPolicy, token: Option<&str>) -> Result<Caller, ApiError> {
        if policy == AuthPolicy::Public {
            return Ok(Caller::Anonymous);
        }
        let Some(token) = token else {
            return match policy {
                AuthPolicy::Optional => Ok(Caller::Anonymous),
                _ => Err(unauthenticated(
                    "TOKEN_MISSING",
                    "this call needs an access token: send `Authorization: Bearer <token>`",
                )),
            };
        };
        let verified = self.verifier.verify(token).map_err(|e| unauthenticated(e.reason(), &e.to_string()))?;
        let principal = Principal { user_id: verified.user_id, role: verified.role };
        if policy == AuthPolicy::Admin && !principal.is_admin() {
            return Err(ApiError::new(Code::PermissionDenied, "this call is for administrators").reason("ADMIN_ONLY"));
        }
        Ok(Caller::User(principal))
    }
}

impl EdgeAuth {
    /// Seconds until a valid `token` expires.
    pub fn seconds_left(&self, token: &str) -> Option<i64> {
        let verified = self.verifier.verify(token).ok()?;
        Some((verified.expires_at - fabula_proto::token::unix_now()).max(0))
    }
}

fn unauthenticated(reason: &str, message: &str) -> ApiError {
    ApiError::new(Code::Unauthenticated, message).reason(reason)
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
            return bearer(value.as_bytes()).map(Self::Header);
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

/// The token of `Bearer <token>`.
fn bearer(value: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthenticated("TOKEN_MALFORMED", "the Authorization header must be `Bearer <token>`"))
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
