//! What updates and deletes share: field masks (AIP-134) and etags (AIP-154).

use prost_types::FieldMask;

use crate::error::{Result, etag_mismatch, invalid};

/// The fields an update changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask(Vec<String>);

impl Mask {
    /// The paths of `mask`, each one of `allowed`; `*` means all of them. A missing or
    /// empty mask means every field for which `populated` is true.
    pub fn parse(mask: Option<&FieldMask>, allowed: &[&str], populated: impl Fn(&str) -> bool) -> Result<Self> {
        let paths = mask.map(|m| m.paths.as_slice()).unwrap_or_default();
        if paths.is_empty() {
            return Ok(Self(allowed.iter().filter(|p| populated(p)).map(|p| (*p).to_owned()).collect()));
        }
        if paths.iter().any(|p| p == "*") {
            return Ok(Self(allowed.iter().map(|p| (*p).to_owned()).collect()));
        }
        for path in paths {
            if !allowed.contains(&path.as_str()) {
                return Err(invalid(
                    "update_mask",
                    format!("{path:?} cannot be updated; the fields that can are {}", allowed.join(", ")),
                ));
            }
        }
        Ok(Self(paths.to_vec()))
    }

    pub fn has(&self, path: &str) -> bool {
        self.0.iter().any(|p| p == path)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The etag of a row at `version`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// ABORTED unless `sent` is empty or the etag of `version`.
pub fn check_etag(sent: &str, version: i64, resource: &str) -> Result<()> {
    if sent.is_empty() || sent == etag(version) { Ok(()) } else { Err(etag_mismatch(resource)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: &[&str] = &["name", "description"];

    #[test]
    fn an_empty_mask_takes_the_populated_fields() {
        let mask = Mask::parse(None, ALLOWED, |p| p == "name").unwrap();
        assert!(mask.has("name") && !mask.has("description"));
        let star = Mask::parse(Some(&FieldMask { paths: vec!["*".into()] }), ALLOWED, |_| false).unwrap();
        assert!(star.has("description"));
    }

    #[test]
    fn unknown_paths_are_refused() {
        let mask = FieldMask { paths: vec!["owner_id".into()] };
        assert!(Mask::parse(Some(&mask), ALLOWED, |_| true).is_err());
    }

    #[test]
    fn etags_match_their_version_only() {
        assert!(check_etag("", 3, "world").is_ok());
        assert!(check_etag(&etag(3), 3, "world").is_ok());
        assert!(check_etag(&etag(2), 3, "world").is_err());
        assert!(check_etag("garbage", 3, "world").is_err());
    }
}
