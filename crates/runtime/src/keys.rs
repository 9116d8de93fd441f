//! Key files: Ed25519 keys in PEM, read from configured paths, or development keys
//! generated once in the data directory (with a warning) — never a constant in code.
//!
//! In development every process shares one data directory: story-service's token
//! key (whose public half the others verify with) and gpt-worker's key (whose public
//! half story-service trusts for delegated tokens) both live there.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use crate::token::{SigningKey, VerifyingKey};

/// story-service's development token key, and its public half.
pub const ACCOUNTS_KEY_FILE: &str = "token-ed25519.pem";
pub const ACCOUNTS_PUBLIC_KEY_FILE: &str = "token-ed25519.pub.pem";
/// gpt-worker's development key, and its public half.
pub const WORKER_KEY_FILE: &str = "worker-ed25519.pem";
pub const WORKER_PUBLIC_KEY_FILE: &str = "worker-ed25519.pub.pem";

/// A key file that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("key file {path}: {reason}")]
pub struct KeyFileError {
    pub path: PathBuf,
    pub reason: String,
}

impl KeyFileError {
    fn new(path: &Path, reason: impl ToString) -> Self {
        Self { path: path.to_owned(), reason: reason.to_string() }
    }
}

pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyFileError> {
    let pem = fs::read_to_string(path).map_err(|e| KeyFileError::new(path, e))?;
    SigningKey::from_pem(&pem).map_err(|e| KeyFileError::new(path, e))
}

/// The public keys in `path`: one PEM block or several, so that during a key
/// rotation one file names both the new key and the one being retired.
pub fn read_verifying_keys(path: &Path) -> Result<Vec<VerifyingKey>, KeyFileError> {
    let pem = fs::read_to_string(path)
        .map_err(|e| KeyFileError::new(path, format!("{e} (start story-service once, or name the key file)")))?;
    let blocks = pem::parse_many(&pem).map_err(|e| KeyFileError::new(path, e))?;
    if blocks.is_empty() {
        return Err(KeyFileError::new(path, "no PEM public key in the file"));
    }
    blocks
        .iter()
        .map(|block| match block.tag() {
            "PUBLIC KEY" => VerifyingKey::from_der(block.contents()).map_err(|e| KeyFileError::new(path, e)),
            tag => Err(KeyFileError::new(path, format!("a {tag} block where a PUBLIC KEY was expected"))),
        })
        .collect()
}

/// The development key `file` in `dir`, generated (with its public half beside it,
/// as `<name>.pub.pem`) the first time.
pub fn development_key(dir: &Path, file: &str) -> Result<SigningKey, KeyFileError> {
    let path = dir.join(file);
    if path.exists() {
        return read_signing_key(&path);
    }
    tracing::warn!(path = %path.display(), "no key configured: generating a development key");
    let key = SigningKey::generate();
    fs::create_dir_all(dir).map_err(|e| KeyFileError::new(dir, e))?;
    match write_private(&path, &key.to_pem()) {
        Ok(()) => {}
        // Another process of the stack made it first: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return read_signing_key(&path),
        Err(e) => return Err(KeyFileError::new(&path, e)),
    }
    let public = dir.join(file.replace(".pem", ".pub.pem"));
    fs::write(&public, key.verifying_key().to_pem()).map_err(|e| KeyFileError::new(&public, e))?;
    Ok(key)
}

/// Writes a new file only its owner can read.
fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    io::Write::write_all(&mut options.open(path)?, contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_development_key_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = development_key(dir.path(), WORKER_KEY_FILE).unwrap();
        let again = development_key(dir.path(), WORKER_KEY_FILE).unwrap();
        assert_eq!(first.verifying_key(), again.verifying_key());
        let public = read_verifying_keys(&dir.path().join(WORKER_PUBLIC_KEY_FILE)).unwrap();
        assert_eq!(public, [first.verifying_key()]);
        assert!(read_signing_key(&dir.path().join("missing.pem")).is_err());
    }

    #[test]
    fn a_public_key_file_may_hold_several_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (new, old) = (SigningKey::generate().verifying_key(), SigningKey::generate().verifying_key());
        let path = dir.path().join("keys.pub.pem");
        fs::write(&path, format!("# the new key\n{}\n# retired on 2026-11-25\n{}", new.to_pem(), old.to_pem()))
            .unwrap();
        assert_eq!(read_verifying_keys(&path).unwrap(), [new, old]);

        for (contents, why) in [
            ("", "an empty file"),
            ("not a key", "no PEM block"),
            ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "a block that is no key"),
            ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "a private key"),
            ("-----BEGIN PUBLIC KEY-----\nAAAA\n", "a block that does not end"),
        ] {
            fs::write(&path, contents).unwrap();
            assert!(read_verifying_keys(&path).is_err(), "{why}");
        }
    }
}
