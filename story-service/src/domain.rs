//! Parsers that turn request fields into values that cannot be wrong. Each returns
//! a description of the problem, which the caller files under the field's name.

use fabula_proto::errors::quote;
use uuid::Uuid;

/// A resource id: a UUID in its usual text form.
pub fn id(value: &str) -> Result<Uuid, String> {
    if value.is_empty() {
        return Err("is required".into());
    }
    Uuid::try_parse(value).map_err(|_| format!("{} is not a valid id", quote(value)))
}

/// Text of `min..=max` characters (Unicode scalar values), surrounding spaces removed.
pub fn text(value: &str, min: usize, max: usize) -> Result<String, String> {
    no_nul(value)?;
    let trimmed = value.trim();
    let length = trimmed.chars().count();
    if length < min {
        return Err(if min == 1 { "is required".into() } else { format!("must have at least {min} characters") });
    }
    if length > max {
        return Err(format!("must have at most {max} characters, not {length}"));
    }
    Ok(trimmed.to_owned())
}

/// A name of 1–200 characters.
pub fn name(value: &str) -> Result<String, String> {
    text(value, 1, 200)
}

/// A long text of at most `max` characters, kept as written.
pub fn body(value: &str, max: usize) -> Result<String, String> {
    no_nul(value)?;
    let length = value.chars().count();
    if length > max {
        return Err(format!("must have at most {max} characters, not {length}"));
    }
    Ok(value.to_owned())
}

/// Text without NUL characters, which PostgreSQL cannot store.
fn no_nul(value: &str) -> Result<(), String> {
    if value.contains('\0') { Err("must not contain NUL characters".into()) } else { Ok(()) }
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

/// A `request_id` for an idempotent create: empty (none) or at most 100 characters.
pub fn request_id(value: &str) -> Result<Option<String>, String> {
    match value.len() {
        0 => Ok(None),
        1..=100 => Ok(Some(value.to_owned())),
        _ => Err("must have at most 100 characters".into()),
    }
}

/// A list of ids with no duplicates, each valid.
pub fn ids(values: &[String], max: usize) -> Result<Vec<Uuid>, String> {
    if values.len() > max {
        return Err(format!("may hold at most {max} ids"));
    }
    let mut parsed = Vec::with_capacity(values.len());
    for value in values {
        let one = id(value)?;
        if parsed.contains(&one) {
            return Err(format!("{} appears twice", quote(value)));
        }
        parsed.push(one);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use fabula_proto::pb::story::Visibility;

    use super::*;

    #[test]
    fn ids_must_be_uuids() {
        for bad in ["", "42", "not-a-uuid", "0000000-0000-0000-0000-000000000000"] {
            assert!(id(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(id("0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c").is_ok());
        let one = "0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c".to_owned();
        assert!(ids(&[one.clone(), one], 10).is_err(), "duplicates were accepted");
    }

    #[test]
    fn text_bounds_count_characters_not_bytes() {
        assert_eq!(name("  Ærendil  ").unwrap(), "Ærendil");
        assert!(name("   ").is_err());
        assert!(name(&"é".repeat(200)).is_ok());
        assert!(name(&"é".repeat(201)).is_err());
        assert!(body(&"x".repeat(11), 10).is_err());
        assert!(name("nul\0inside").is_err(), "a NUL was accepted");
        assert!(body("nul\0", 10).is_err(), "a NUL was accepted");
    }

    #[test]
    fn enums_default_and_reject_unknown_numbers() {
        assert_eq!(enumeration(0, Visibility::Draft), Ok(Visibility::Draft));
        assert_eq!(enumeration(3, Visibility::Draft), Ok(Visibility::Public));
        assert!(enumeration::<Visibility>(99, Visibility::Draft).is_err());
    }

    #[test]
    fn request_ids_are_bounded() {
        assert_eq!(request_id(""), Ok(None));
        assert!(request_id(&"r".repeat(101)).is_err());
    }
}
