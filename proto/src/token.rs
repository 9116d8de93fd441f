//! Access tokens: short-lived EdDSA JWTs that story-service signs and every service
//! verifies with its public key. The algorithm is pinned, and `iss`, `aud`, `exp`,
//! `nbf`, `iat`, `sub`, `typ` and the role are all checked. Verified tokens are
//! cached until they expire, which keeps the signature check off the hot path.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::pb::accounts::Role;

/// `iss` of every access token.
pub const ISSUER: &str = "fabula-story-service";
/// `aud` of every access token.
pub const AUDIENCE: &str = "fabula";
/// `typ` of an access token; nothing else is accepted as one.
pub const ACCESS: &str = "access";
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 5;
/// Verified tokens kept in the cache at most; past it, expired ones are dropped first.
const CACHE_CAPACITY: usize = 100_000;

/// The claims of an access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user's id.
    pub sub: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub typ: String,
    /// The user's role when the token was issued, by its proto name.
    pub role: String,
    pub jti: String,
}

/// Why a token was refused. The message is safe to show a caller.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid")]
    Invalid,
}

impl TokenError {
    /// The stable `ErrorInfo.reason` for this refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed => "TOKEN_MALFORMED",
            Self::Expired => "TOKEN_EXPIRED",
            Self::Invalid => "TOKEN_INVALID",
        }
    }
}

/// A key file that could not be read as an Ed25519 key.
#[derive(Debug, thiserror::Error)]
#[error("not an Ed25519 key in PEM form: {0}")]
pub struct KeyError(String);

/// The private half: only story-service holds it. Never printed.
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    encoding: EncodingKey,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_dalek(ed25519_dalek::SigningKey::from_bytes(&rand::random()))
    }

    /// Reads a PKCS#8 PEM key (`openssl genpkey -algorithm ed25519`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map_err(|e| KeyError(e.to_string()))?;
        Ok(Self::from_dalek(key))
    }

    fn from_dalek(key: ed25519_dalek::SigningKey) -> Self {
        let pem = key.to_pkcs8_pem(LineEnding::LF).expect("an Ed25519 key encodes as PKCS#8");
        let encoding = EncodingKey::from_ed_pem(pem.as_bytes()).expect("jsonwebtoken reads PKCS#8 Ed25519");
        let kid = key_id(&key.verifying_key());
        Self { key, encoding, kid }
    }

    /// The key as PKCS#8 PEM, to keep in a file readable by its owner only.
    pub fn to_pem(&self) -> String {
        self.key.to_pkcs8_pem(LineEnding::LF).expect("an Ed25519 key encodes as PKCS#8").to_string()
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey { key: self.key.verifying_key(), kid: self.kid.clone() }
    }

    /// Signs `claims` with this key and its key id.
    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("claims serialize and Ed25519 signs")
    }
}

/// The public half, which every service uses to verify tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyingKey {
    key: ed25519_dalek::VerifyingKey,
    kid: String,
}

impl VerifyingKey {
    /// Reads an SPKI PEM public key (`openssl pkey -pubout`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = ed25519_dalek::VerifyingKey::from_public_key_pem(pem).map_err(|e| KeyError(e.to_string()))?;
        Ok(Self { kid: key_id(&key), key })
    }

    pub fn to_pem(&self) -> String {
        self.key.to_public_key_pem(LineEnding::LF).expect("an Ed25519 key encodes as SPKI")
    }

    /// The key id carried in the `kid` header of the tokens it verifies.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The raw key, base64url: the `x` of its JWK.
    pub fn x(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.as_bytes())
    }
}

/// A stable id for a key: the first 12 bytes of the SHA-256 of the raw public key.
fn key_id(key: &ed25519_dalek::VerifyingKey) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(key.as_bytes())[..12])
}

/// Signs access tokens; story-service's alone.
#[derive(Debug)]
pub struct TokenIssuer {
    key: SigningKey,
    ttl: Duration,
}

/// A token just made, with what the caller needs to know of it.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: Duration,
}

impl TokenIssuer {
    pub fn new(key: SigningKey, ttl: Duration) -> Self {
        Self { key, ttl }
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// An access token for `user_id` with `role`, valid from now for the configured time.
    pub fn issue(&self, user_id: Uuid, role: Role) -> IssuedToken {
        let now = unix_now();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: user_id.to_string(),
            iat: now,
            nbf: now,
            exp: now + self.ttl.as_secs() as i64,
            typ: ACCESS.into(),
            role: role.as_str_name().into(),
            jti: Uuid::new_v4().to_string(),
        };
        IssuedToken { token: self.key.sign(&claims), expires_in: self.ttl }
    }
}

/// What a valid access token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    pub user_id: Uuid,
    pub role: Role,
    /// Seconds since the Unix epoch.
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Checks access tokens against one or more public keys (several during a rotation).
pub struct TokenVerifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
    cache: Mutex<HashMap<String, VerifiedToken>>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").field("kids", &self.keys.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

impl TokenVerifier {
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        let keys = keys
            .into_iter()
            .map(|k| (k.kid.clone(), DecodingKey::from_ed_components(&k.x()).expect("a valid Ed25519 key")))
            .collect();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        Self { keys, validation, cache: Mutex::default() }
    }

    /// Verifies `token`, from the cache when it was verified before and has not expired.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let now = unix_now();
        if let Some(hit) = self.cache.lock().expect("token cache").get(token).copied()
            && hit.expires_at + LEEWAY_SECONDS as i64 > now
        {
            return Ok(hit);
        }
        let verified = self.verify_signature(token)?;
        self.remember(token, verified, now);
        Ok(verified)
    }

    fn verify_signature(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let key = header.kid.as_deref().and_then(|kid| self.keys.get(kid)).ok_or(TokenError::Invalid)?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                    TokenError::Malformed
                }
                _ => TokenError::Invalid,
            })?
            .claims;
        if claims.typ != ACCESS {
            return Err(TokenError::Invalid);
        }
        let user_id = claims.sub.parse().map_err(|_| TokenError::Invalid)?;
        let role = Role::from_str_name(&claims.role).filter(|r| *r != Role::Unspecified).ok_or(TokenError::Invalid)?;
        Ok(VerifiedToken { user_id, role, issued_at: claims.iat, expires_at: claims.exp })
    }

    fn remember(&self, token: &str, verified: VerifiedToken, now: i64) {
        let mut cache = self.cache.lock().expect("token cache");
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, v| v.expires_at > now);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(token.to_owned(), verified);
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_its_pem_forms() {
        let key = SigningKey::generate();
        let again = SigningKey::from_pem(&key.to_pem()).unwrap();
        assert_eq!(key.verifying_key(), again.verifying_key());
        let public = VerifyingKey::from_pem(&key.verifying_key().to_pem()).unwrap();
        assert_eq!(public, key.verifying_key());
    }

    #[test]
    fn an_issued_token_verifies_and_a_foreign_one_does_not() {
        let issuer = TokenIssuer::new(SigningKey::generate(), Duration::from_secs(60));
        let user = Uuid::now_v7();
        let token = issuer.issue(user, Role::Moderator).token;
        let verifier = TokenVerifier::new([issuer.verifying_key()]);
        let verified = verifier.verify(&token).unwrap();
        assert_eq!((verified.user_id, verified.role), (user, Role::Moderator));
        // Cached the second time, same answer.
        assert_eq!(verifier.verify(&token).unwrap(), verified);

        let stranger = TokenVerifier::new([SigningKey::generate().verifying_key()]);
        assert_eq!(stranger.verify(&token), Err(TokenError::Invalid));
    }

    #[test]
    fn garbage_is_malformed() {
        let verifier = TokenVerifier::new([SigningKey::generate().verifying_key()]);
        for bad in ["", "abc", "a.b.c", "eyJhbGciOiJFZERTQSJ9.e30."] {
            assert!(verifier.verify(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn bad_pem_is_an_error() {
        assert!(SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err());
        assert!(VerifyingKey::from_pem("not a key").is_err());
    }
}
