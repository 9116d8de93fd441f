//! Access tokens: short-lived EdDSA JWTs that story-service signs and every service
//! verifies with its public key. The algorithm is pinned, and `iss`, `aud`, `exp`,
//! `nbf`, `iat`, `sub`, `typ` and the role are all checked. Verified tokens are
//! cached until they expire, which keeps the signature check off the hot path.
//!
//! A service that acts for a user (gpt-worker writing a job's results) signs a
//! *delegated* token with its own key: `iss` names the service, `typ` is
//! `delegated`, `sub` is the user. Only verifiers told to trust that service's key
//! accept it, and the user's rights are then checked as for the user themselves.

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

use fabula_contracts::pb::accounts::Role;

/// `iss` of every access token.
pub const ISSUER: &str = "fabula-story-service";
/// `aud` of every access token.
pub const AUDIENCE: &str = "fabula";
/// `typ` of an access token; nothing else is accepted as one.
pub const ACCESS: &str = "access";
/// The name under which gpt-worker signs delegated tokens.
pub const WORKER_SERVICE: &str = "gpt-worker";
/// `typ` of a token a service signs to act for a user.
pub const DELEGATED: &str = "delegated";
/// How long a delegated token lives: each is made for one call.
const DELEGATED_TTL_SECONDS: i64 = 60;
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
    /// Seconds since the Unix epoch, to the millisecond (a JWT NumericDate may be
    /// fractional), so a token issued just before a password change is told apart
    /// from one issued just after it.
    pub iat: f64,
    pub nbf: i64,
    pub exp: i64,
    pub typ: String,
    /// The user's role when the token was issued, by its proto name.
    pub role: String,
    pub jti: String,
    /// A delegated token: the job the service runs for the user, when it writes for
    /// one. Read only from the tokens of a trusted service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
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

    /// Reads an SPKI public key in DER, a PEM block's contents.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        let key = ed25519_dalek::VerifyingKey::from_public_key_der(der).map_err(|e| KeyError(e.to_string()))?;
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
        let now_ms = unix_now_millis();
        let now = now_ms / 1000;
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: user_id.to_string(),
            iat: now_ms as f64 / 1000.0,
            nbf: now,
            exp: now + self.ttl.as_secs() as i64,
            typ: ACCESS.into(),
            role: role.as_str_name().into(),
            jti: Uuid::new_v4().to_string(),
            job: None,
        };
        IssuedToken { token: self.key.sign(&claims), expires_in: self.ttl }
    }
}

/// The `iss` of the delegated tokens that service `name` signs.
pub fn service_issuer(name: &str) -> String {
    format!("fabula-{name}")
}

/// Signs delegated tokens for one service, to act for users.
#[derive(Debug)]
pub struct DelegationIssuer {
    issuer: String,
    key: SigningKey,
}

impl DelegationIssuer {
    pub fn new(service: &str, key: SigningKey) -> Self {
        Self { issuer: service_issuer(service), key }
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// A token, valid for a minute, with which the service acts for `user_id`.
    pub fn token_for(&self, user_id: Uuid) -> String {
        self.token(user_id, None)
    }

    /// A token, valid for a minute, with which the service acts for `user_id` while
    /// running job `job_id`: story-service records the job as the writer.
    pub fn token_for_job(&self, user_id: Uuid, job_id: Uuid) -> String {
        self.token(user_id, Some(job_id))
    }

    fn token(&self, user_id: Uuid, job_id: Option<Uuid>) -> String {
        let now = unix_now();
        self.key.sign(&Claims {
            iss: self.issuer.clone(),
            aud: AUDIENCE.into(),
            sub: user_id.to_string(),
            iat: now as f64,
            nbf: now,
            exp: now + DELEGATED_TTL_SECONDS,
            typ: DELEGATED.into(),
            role: String::new(),
            jti: Uuid::new_v4().to_string(),
            job: job_id.map(|id| id.to_string()),
        })
    }
}

/// What a valid token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    pub user_id: Uuid,
    /// The role claimed by an access token; `Unspecified` for a delegated one,
    /// whose user's role must be looked up.
    pub role: Role,
    /// Whether a trusted service signed it to act for the user.
    pub delegated: bool,
    /// A delegated token's job: what the service runs for the user.
    pub job_id: Option<Uuid>,
    /// Milliseconds since the Unix epoch.
    pub issued_at_ms: i64,
    pub expires_at: i64,
}

/// Whose tokens a key verifies.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Signer {
    /// story-service: access tokens.
    Accounts,
    /// A trusted service, by its `iss`: delegated tokens.
    Service(String),
}

/// Checks tokens against one or more public keys (several during a rotation).
pub struct TokenVerifier {
    keys: HashMap<String, (DecodingKey, Signer)>,
    validation: Validation,
    cache: Mutex<HashMap<String, VerifiedToken>>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").field("kids", &self.keys.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// A verifier of the access tokens signed by any of `keys`.
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        let keys = keys.into_iter().map(|k| (k.kid.clone(), (decoding_key(&k), Signer::Accounts))).collect();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        Self { keys, validation, cache: Mutex::default() }
    }

    /// Also accepts the delegated tokens that service `name` signs with `key`.
    pub fn trust_service(mut self, name: &str, key: &VerifyingKey) -> Self {
        self.keys.insert(key.kid.clone(), (decoding_key(key), Signer::Service(service_issuer(name))));
        self
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
        let (key, signer) = header.kid.as_deref().and_then(|kid| self.keys.get(kid)).ok_or(TokenError::Invalid)?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                    TokenError::Malformed
                }
                _ => TokenError::Invalid,
            })?
            .claims;
        let user_id = claims.sub.parse().map_err(|_| TokenError::Invalid)?;
        let (role, delegated) = match signer {
            Signer::Accounts if claims.iss == ISSUER && claims.typ == ACCESS => {
                let role = Role::from_str_name(&claims.role).filter(|r| *r != Role::Unspecified);
                (role.ok_or(TokenError::Invalid)?, false)
            }
            Signer::Service(issuer) if claims.iss == *issuer && claims.typ == DELEGATED => (Role::Unspecified, true),
            _ => return Err(TokenError::Invalid),
        };
        let job_id = match claims.job.filter(|_| delegated) {
            Some(job) => Some(job.parse().map_err(|_| TokenError::Invalid)?),
            None => None,
        };
        Ok(VerifiedToken {
            user_id,
            role,
            delegated,
            job_id,
            issued_at_ms: (claims.iat * 1000.0).round() as i64,
            expires_at: claims.exp,
        })
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

fn decoding_key(key: &VerifyingKey) -> DecodingKey {
    DecodingKey::from_ed_components(&key.x()).expect("a valid Ed25519 key")
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    unix_now_millis() / 1000
}

/// Milliseconds since the Unix epoch.
pub fn unix_now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
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
    fn delegated_tokens_need_a_trusted_service() {
        let accounts = SigningKey::generate().verifying_key();
        let worker = DelegationIssuer::new("gpt-worker", SigningKey::generate());
        let user = Uuid::now_v7();
        let token = worker.token_for(user);
        assert_eq!(TokenVerifier::new([accounts.clone()]).verify(&token), Err(TokenError::Invalid));
        let trusting = TokenVerifier::new([accounts]).trust_service("gpt-worker", &worker.verifying_key());
        let verified = trusting.verify(&token).unwrap();
        assert!(verified.delegated);
        assert_eq!((verified.user_id, verified.job_id), (user, None));
        let job = Uuid::now_v7();
        assert_eq!(trusting.verify(&worker.token_for_job(user, job)).unwrap().job_id, Some(job));
        // The key of one service does not vouch for another's issuer.
        let imposter = TokenVerifier::new([]).trust_service("gateway", &worker.verifying_key());
        assert_eq!(imposter.verify(&token), Err(TokenError::Invalid));
    }

    #[test]
    fn only_a_trusted_service_names_a_job() {
        let key = SigningKey::generate();
        let now = unix_now();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: Uuid::now_v7().to_string(),
            iat: now as f64,
            nbf: now,
            exp: now + 60,
            typ: ACCESS.into(),
            role: Role::User.as_str_name().into(),
            jti: Uuid::new_v4().to_string(),
            job: Some(Uuid::now_v7().to_string()),
        };
        let verified = TokenVerifier::new([key.verifying_key()]).verify(&key.sign(&claims)).unwrap();
        assert_eq!(verified.job_id, None, "an access token's job claim is ignored");
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
