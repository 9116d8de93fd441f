//! What updates and deletes share: field masks (AIP-134) and etags (AIP-154).

use fabula_runtime::{
    errors::{FieldViolations, quote},
    rules,
};
use fabula_store::error::{Result, etag_mismatch, invalid};
use prost_types::FieldMask;
use uuid::Uuid;

use crate::domain;

/// The fields an update changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask(Vec<String>);

impl Mask {
    /// The paths of `mask`, each one of `allowed`. A missing or empty mask means every
    /// field for which `populated` is true. Paths that cannot be updated (`*` among
    /// them: a full replacement would clear what the request leaves out) are filed
    /// in `violations` under `update_mask`.
    pub fn parse(
        mask: Option<&FieldMask>,
        allowed: &[&str],
        populated: impl Fn(&str) -> bool,
        violations: &mut FieldViolations,
    ) -> Self {
        let paths = mask.map(|m| m.paths.as_slice()).unwrap_or_default();
        if paths.is_empty() {
            return Self(allowed.iter().filter(|p| populated(p)).map(|p| (*p).to_owned()).collect());
        }
        for path in paths.iter().filter(|p| !allowed.contains(&p.as_str())) {
            violations.add(
                "update_mask",
                format!("{} cannot be updated; the fields that can are {}", quote(path), allowed.join(", ")),
            );
        }
        Self(paths.iter().filter(|p| allowed.contains(&p.as_str())).cloned().collect())
    }

    pub fn has(&self, path: &str) -> bool {
        self.0.iter().any(|p| p == path)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What an update names: the resource's id (filed under `id_field`) and its mask,
/// checked together so that one INVALID_ARGUMENT names both when both are wrong.
pub fn target(
    id: &str,
    id_field: &str,
    mask: Option<&FieldMask>,
    allowed: &[&str],
    populated: impl Fn(&str) -> bool,
) -> Result<(Uuid, Mask)> {
    let mut violations = FieldViolations::new();
    let id = violations.check(id_field, domain::id(id));
    let mask = Mask::parse(mask, allowed, populated, &mut violations);
    violations.finish()?;
    Ok((id.unwrap_or_default(), mask))
}

/// The etag of a row at `version`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// ABORTED unless `sent` is empty or the etag of `version`; INVALID_ARGUMENT when it
/// is not an etag at all (every etag field declares the same rule).
pub fn check_etag(sent: &str, version: i64, resource: &str) -> Result<()> {
    rules::text(sent, &rules::story::world::ETAG).map_err(|problem| invalid("etag", problem))?;
    if sent.is_empty() || sent == etag(version) { Ok(()) } else { Err(etag_mismatch(resource)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: &[&str] = &["name", "description"];

    #[test]
    fn an_empty_mask_takes_the_populated_fields() {
        let mut violations = FieldViolations::new();
        let mask = Mask::parse(None, ALLOWED, |p| p == "name", &mut violations);
        assert!(mask.has("name") && !mask.has("description"));
        assert!(violations.is_empty());
    }

    #[test]
    fn unknown_paths_and_a_full_replacement_are_refused() {
        for path in ["owner_id", "*"] {
            let mask = FieldMask { paths: vec![path.into()] };
            let mut violations = FieldViolations::new();
            Mask::parse(Some(&mask), ALLOWED, |_| true, &mut violations);
            assert!(!violations.is_empty(), "{path:?} was taken");
        }
    }

    #[test]
    fn a_bad_id_and_a_bad_mask_are_named_together() {
        let mask = FieldMask { paths: vec!["owner_id".into()] };
        let status = target("nope", "world.id", Some(&mask), ALLOWED, |_| true).unwrap_err();
        let status = tonic::Status::from(status);
        let fields: Vec<_> = tonic_types::StatusExt::get_details_bad_request(&status)
            .expect("a BadRequest")
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["world.id", "update_mask"]);
    }

    #[test]
    fn etags_match_their_version_only() {
        assert!(check_etag("", 3, "world").is_ok());
        assert!(check_etag(&etag(3), 3, "world").is_ok());
        assert!(check_etag(&etag(2), 3, "world").is_err());
        assert!(check_etag("garbage", 3, "world").is_err());
    }
}
