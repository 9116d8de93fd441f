//! Password hashing: Argon2id with the argon2 crate's default parameters, in PHC
//! string form. Hashing is slow on purpose, so it runs on the blocking pool, at most
//! a few at a time (each takes ~19 MiB). Checking a password against nobody's hash
//! verifies it against a dummy hash, so an unknown login costs what a wrong password does.

use std::sync::LazyLock;

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{self, SaltString},
};
use tokio::sync::Semaphore;

use fabula_store::error::{Error, Result};

/// A hash of a random password nobody knows, made once, with the same parameters
/// as real hashes.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let unknowable = uuid::Uuid::new_v4().to_string();
    hash_now(&unknowable).expect("a random password hashes")
});

/// The stored "hash" of an account that has no password (made by a first sign-in
/// with an OpenID Connect provider): no PHC string, so no password matches it.
pub const NO_PASSWORD: &str = "!";

/// Hashes running at once: one per core, so a burst of sign-ins queues instead of
/// filling memory.
static HASHING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get)));

/// The PHC string of `password` under a fresh random salt.
pub async fn hash(password: String) -> Result<String> {
    run_blocking(move || hash_now(&password)).await
}

/// Whether `password` matches `stored`. With no stored hash (an unknown user) or
/// [`NO_PASSWORD`] it checks against the dummy hash, taking as long, and answers `false`.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool> {
    run_blocking(move || match stored {
        Some(hash) if hash != NO_PASSWORD => verify_now(&password, &hash),
        _ => verify_now(&password, &DUMMY_HASH).map(|_| false),
    })
    .await
}

/// Makes the dummy hash in the background now, so the first unknown login is not
/// slower than the logins after it.
pub fn warm_up() {
    tokio::task::spawn_blocking(|| LazyLock::force(&DUMMY_HASH).len());
}

/// Runs `work` on the blocking pool once a hashing slot is free.
async fn run_blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T> {
    let _slot = HASHING.acquire().await.map_err(|e| Error::Internal(format!("hashing slots closed: {e}")))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal(format!("password hashing panicked: {e}")))?
        .map_err(Error::Internal)
}

fn hash_now(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| format!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash a password: {e}"))
}

fn verify_now(password: &str, hash: &str) -> Result<bool, String> {
    let parsed = PasswordHash::new(hash).map_err(|e| format!("a stored password hash is malformed: {e}"))?;
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(password_hash::Error::Password) => Ok(false),
        Err(e) => Err(format!("cannot verify a password: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hash = hash("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "not Argon2id: {hash}");
        assert!(verify("correct horse battery".into(), Some(hash.clone())).await.unwrap());
        assert!(!verify("correct horse battery!".into(), Some(hash.clone())).await.unwrap());
        let again = super::hash("correct horse battery".into()).await.unwrap();
        assert_ne!(hash, again, "two hashes of one password share a salt");
    }

    #[tokio::test]
    async fn nobody_has_no_password_and_broken_hashes_are_errors() {
        assert!(!verify("anything at all".into(), None).await.unwrap());
        assert!(!verify(NO_PASSWORD.into(), Some(NO_PASSWORD.into())).await.unwrap());
        assert!(verify("anything at all".into(), Some("not a hash".into())).await.is_err());
    }
}
