//! The rules of account fields: usernames, email addresses, passwords, display
//! names and roles. Each parser returns a description of the problem, which the
//! caller files under the field's proto name.

use fabula_proto::pb::accounts::Role;

use crate::domain;

/// Shortest and longest username, in characters.
const USERNAME_LENGTH: (usize, usize) = (3, 50);
/// Shortest and longest password, in characters.
const PASSWORD_LENGTH: (usize, usize) = (10, 128);
/// Longest email address (RFC 5321's path limit).
const MAX_EMAIL: usize = 254;
/// Longest display name.
const MAX_DISPLAY_NAME: usize = 100;

/// A username: 3–50 ASCII letters, digits, `_` or `-`.
pub fn username(value: &str) -> Result<String, String> {
    let (min, max) = USERNAME_LENGTH;
    if value.is_empty() {
        return Err("is required".into());
    }
    if let Some(bad) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        return Err(format!("may only hold letters, digits, `_` and `-`, not {bad:?}"));
    }
    match value.len() {
        n if n < min => Err(format!("must have at least {min} characters")),
        n if n > max => Err(format!("must have at most {max} characters, not {n}")),
        _ => Ok(value.to_owned()),
    }
}

/// An email address, surrounding spaces removed: one `@` between a non-empty local
/// part and a domain with a dot inside it, no spaces, at most 254 characters.
pub fn email(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("is required".into());
    }
    let length = value.chars().count();
    if length > MAX_EMAIL {
        return Err(format!("must have at most {MAX_EMAIL} characters, not {length}"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("may not contain spaces".into());
    }
    let Some((local, domain)) = value.split_once('@') else {
        return Err("is not an email address: it has no `@`".into());
    };
    if domain.contains('@') {
        return Err("is not an email address: it has more than one `@`".into());
    }
    let dotted = domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.');
    if local.is_empty() || !dotted {
        return Err("is not an email address like name@example.com".into());
    }
    Ok(value.to_owned())
}

/// A new password: 10–128 characters, kept exactly as typed.
pub fn password(value: &str) -> Result<(), String> {
    let (min, max) = PASSWORD_LENGTH;
    match value.chars().count() {
        0 => Err("is required".into()),
        n if n < min => Err(format!("must have at least {min} characters")),
        n if n > max => Err(format!("must have at most {max} characters, not {n}")),
        _ => Ok(()),
    }
}

/// A display name: 1–100 characters, surrounding spaces removed.
pub fn display_name(value: &str) -> Result<String, String> {
    domain::text(value, 1, MAX_DISPLAY_NAME)
}

/// A role an administrator may give: USER, MODERATOR or ADMIN.
pub fn role(value: i32) -> Result<Role, String> {
    match Role::try_from(value) {
        Ok(role @ (Role::User | Role::Moderator | Role::Admin)) => Ok(role),
        _ => Err("must be USER, MODERATOR or ADMIN".into()),
    }
}

/// Whether `value` names a role, as a filter accepts it.
pub fn is_role_name(value: &str) -> bool {
    Role::from_str_name(value).is_some_and(|r| r != Role::Unspecified)
}

/// The form of a username or email address that uniqueness is checked on.
pub fn key(value: &str) -> String {
    value.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_short_ascii_words() {
        let bad = [
            ("", "empty"),
            ("ab", "too short"),
            (&"a".repeat(51) as &str, "too long"),
            ("john doe", "a space"),
            (" john", "a leading space"),
            ("jöhn", "a non-ASCII letter"),
            ("john@example.com", "an `@`, which would make it look like an email"),
            ("john.doe", "a dot"),
            ("ǅohn", "a titlecase letter"),
        ];
        for (value, why) in bad {
            assert!(username(value).is_err(), "{value:?} was accepted ({why})");
        }
        for good in ["abc", "John_Doe-42", &"z".repeat(50)] {
            assert_eq!(username(good).as_deref(), Ok(good), "{good:?} was refused");
        }
    }

    #[test]
    fn emails_need_one_at_and_a_dotted_domain() {
        let long = format!("{}@example.com", "a".repeat(243));
        let bad = [
            ("", "empty"),
            ("   ", "only spaces"),
            ("john", "no `@`"),
            ("@example.com", "empty local part"),
            ("john@", "empty domain"),
            ("john@localhost", "a domain without a dot"),
            ("john@@example.com", "two `@`"),
            ("a@b@example.com", "two `@` apart"),
            ("john@.com", "a domain starting with a dot"),
            ("john@example.", "a domain ending with a dot"),
            ("jo hn@example.com", "a space inside"),
            ("john@exa\tmple.com", "a tab inside"),
            (&long as &str, "255 characters"),
        ];
        for (value, why) in bad {
            assert!(email(value).is_err(), "{value:?} was accepted ({why})");
        }
        assert_eq!(email("  John@Example.com ").as_deref(), Ok("John@Example.com"));
        assert!(email(&format!("{}@example.com", "a".repeat(242))).is_ok(), "254 characters were refused");
    }

    #[test]
    fn passwords_count_characters() {
        let bad = [
            ("", "empty"),
            ("123456789", "nine characters"),
            (&"p".repeat(129) as &str, "129 characters"),
            (&"é".repeat(129) as &str, "129 two-byte characters"),
        ];
        for (value, why) in bad {
            assert!(password(value).is_err(), "{value:?} was accepted ({why})");
        }
        for good in ["correct horse", "0123456789", &"é".repeat(128), "          "] {
            assert!(password(good).is_ok(), "{good:?} was refused");
        }
    }

    #[test]
    fn display_names_are_bounded() {
        let bad = [("", "empty"), ("   ", "only spaces"), (&"n".repeat(101) as &str, "101 characters")];
        for (value, why) in bad {
            assert!(display_name(value).is_err(), "{value:?} was accepted ({why})");
        }
        assert_eq!(display_name("  Ada Lovelace ").as_deref(), Ok("Ada Lovelace"));
    }

    #[test]
    fn roles_must_be_given_ones() {
        let bad = [(Role::Unspecified as i32, "unspecified"), (42, "an unknown number"), (-1, "negative")];
        for (value, why) in bad {
            assert!(role(value).is_err(), "{value} was accepted ({why})");
        }
        assert_eq!(role(Role::Moderator as i32), Ok(Role::Moderator));
        assert!(is_role_name("ADMIN") && !is_role_name("ROLE_UNSPECIFIED") && !is_role_name("admin"));
    }

    #[test]
    fn keys_ignore_case() {
        assert_eq!(key("John_Doe"), key("jOHN_dOE"));
    }
}
