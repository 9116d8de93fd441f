//! Parsers that turn request fields into values that cannot be wrong, beside the
//! declared rules of text fields ([`fabula_runtime::rules`]): ids, enums, request ids.
//! Each returns a description of the problem, which the caller files under the
//! field's name.

use fabula_runtime::rules::Checks;
use fabula_runtime::{
    errors::FieldViolations,
    rules::{self, Rule, TextKind},
};
use uuid::Uuid;

/// The rule every id field declares.
const ID: Rule = Rule { text: TextKind::Id, min_length: 1, ..rules::EMPTY };

/// A resource id: a UUID in its hyphenated form.
pub fn id(value: &str) -> Result<Uuid, String> {
    rules::text(value, &ID)?;
    Uuid::try_parse(value).map_err(|_| "is not a valid id".to_owned())
}

/// An id that may be left out: `None` when empty.
pub fn optional_id(value: &str) -> Result<Option<Uuid>, String> {
    if value.is_empty() { Ok(None) } else { id(value).map(Some) }
}

/// A proto enum field: `UNSPECIFIED` becomes `default`, unknown numbers are an error.
pub fn enumeration<E>(value: i32, default: E) -> Result<E, String>
where
    E: TryFrom<i32> + PartialEq + Copy + Default,
{
    match E::try_from(value) {
        Ok(parsed) if parsed == E::default() => Ok(default),
        Ok(parsed) => Ok(parsed),
        Err(_) => Err(format!("{value} is not one of the allowed values")),
    }
}

/// A `request_id` for an idempotent create: empty (none) or as its `rule` says.
pub fn request_id(value: &str, rule: &Rule) -> Result<Option<String>, String> {
    rules::text(value, rule).map(|id| Some(id).filter(|id| !id.is_empty()))
}

/// The list of ids `field` as its `rule` says (so many at most, none twice), its
/// problems filed in `violations`.
pub fn ids(field: &str, values: &[String], rule: &Rule, violations: &mut FieldViolations) -> Option<Vec<Uuid>> {
    let checked = rule.check_list(field, values, violations)?;
    checked.iter().map(|value| Uuid::try_parse(value).ok()).collect()
}

#[cfg(test)]
mod tests {
    use fabula_contracts::pb::story::Visibility;

    use super::*;

    #[test]
    fn ids_must_be_uuids_in_their_hyphenated_form() {
        for bad in
            ["", "42", "not-a-uuid", "0000000-0000-0000-0000-000000000000", "{0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c}"]
        {
            assert!(id(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(id("0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c").is_ok());
        assert_eq!(optional_id(""), Ok(None));
        let one = "0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c".to_owned();
        let rule = fabula_runtime::rules::story::story::ENTITY_IDS;
        let mut violations = FieldViolations::new();
        assert_eq!(ids("story.entity_ids", &[one.clone(), one], &rule, &mut violations), None);
        assert!(!violations.is_empty(), "duplicates were accepted");
    }

    #[test]
    fn enums_default_and_reject_unknown_numbers() {
        assert_eq!(enumeration(0, Visibility::Draft), Ok(Visibility::Draft));
        assert_eq!(enumeration(3, Visibility::Draft), Ok(Visibility::Public));
        assert!(enumeration::<Visibility>(99, Visibility::Draft).is_err());
    }

    #[test]
    fn request_ids_are_bounded() {
        let rule = fabula_runtime::rules::story::create_world_request::REQUEST_ID;
        assert_eq!(request_id("", &rule), Ok(None));
        assert!(request_id(&"r".repeat(101), &rule).is_err());
    }
}
