//! The key that signs access tokens: from the configured file, or a development key
//! generated once under the data directory (with a warning), never a constant.

use std::{fs, io, path::Path};

use fabula_proto::token::SigningKey;

use crate::{BuildError, config::Settings};

/// The file name of the development key under the data directory.
pub const DEV_KEY_FILE: &str = "token-ed25519.pem";
/// Its public half, for the other services to verify with.
pub const DEV_PUBLIC_KEY_FILE: &str = "token-ed25519.pub.pem";

pub fn signing_key(settings: &Settings) -> Result<SigningKey, BuildError> {
    if let Some(path) = &settings.token_private_key_file {
        return read_key(path);
    }
    let path = settings.data_dir.join(DEV_KEY_FILE);
    if path.exists() {
        return read_key(&path);
    }
    tracing::warn!(path = %path.display(), "no token key configured: generating a development key");
    let key = SigningKey::generate();
    fs::create_dir_all(&settings.data_dir).map_err(|e| BuildError::Key(path.display().to_string(), e.to_string()))?;
    write_private(&path, &key.to_pem()).map_err(|e| BuildError::Key(path.display().to_string(), e.to_string()))?;
    let public = settings.data_dir.join(DEV_PUBLIC_KEY_FILE);
    fs::write(&public, key.verifying_key().to_pem())
        .map_err(|e| BuildError::Key(public.display().to_string(), e.to_string()))?;
    Ok(key)
}

fn read_key(path: &Path) -> Result<SigningKey, BuildError> {
    let pem = fs::read_to_string(path).map_err(|e| BuildError::Key(path.display().to_string(), e.to_string()))?;
    SigningKey::from_pem(&pem).map_err(|e| BuildError::Key(path.display().to_string(), e.to_string()))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    io::Write::write_all(&mut options.open(path)?, contents.as_bytes())
}
