//! The rules of account fields: usernames, email addresses, passwords, display
//! names and roles. Each parser returns a description of the problem, which the
//! caller files under the field's proto name.

use fabula_contracts::pb::accounts::Role;
use fabula_runtime::rules::{self, accounts as declared};

/// A username as registration declares it: ASCII letters, digits, `_` or `-`.
pub fn username(value: &str) -> Result<String, String> {
    rules::text(value, &declared::register_request::USERNAME)
}

/// An email address: one `@` between a non-empty local part and a domain with a dot
/// inside it, no white space or control characters.
pub fn email(value: &str) -> Result<String, String> {
    rules::text(value, &declared::register_request::EMAIL)
}

/// A new password, kept exactly as typed; not only white space.
pub fn password(value: &str) -> Result<String, String> {
    rules::text(value, &declared::register_request::PASSWORD)
}

/// A display name, surrounding spaces removed; empty clears it.
pub fn display_name(value: &str) -> Result<String, String> {
    rules::text(value, &declared::user::DISPLAY_NAME)
}

/// A role an administrator may give: USER, MODERATOR or ADMIN.
pub fn role(value: i32) -> Result<Role, String> {
    match Role::try_from(value) {
        Ok(role @ (Role::User | Role::Moderator | Role::Admin)) => Ok(role),
        _ => Err("must be USER, MODERATOR or ADMIN".into()),
    }
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
        assert!(email("  John@Example.com ").is_err(), "surrounding spaces are refused, not trimmed away");
        assert_eq!(email("John@Example.com").as_deref(), Ok("John@Example.com"));
        assert!(email(&format!("{}@example.com", "a".repeat(242))).is_ok(), "254 characters were refused");
    }

    #[test]
    fn passwords_count_characters() {
        let bad = [
            ("", "empty"),
            ("123456789", "nine characters"),
            (&"p".repeat(129) as &str, "129 characters"),
            (&"é".repeat(129) as &str, "129 two-byte characters"),
            ("          ", "only spaces"),
            ("\u{3000}\t\u{a0}\n        ", "only white space of several kinds"),
        ];
        for (value, why) in bad {
            assert!(password(value).is_err(), "{value:?} was accepted ({why})");
        }
        for good in ["correct horse", "0123456789", &"é".repeat(128), "         x"] {
            assert!(password(good).is_ok(), "{good:?} was refused");
        }
    }

    #[test]
    fn display_names_are_bounded() {
        let bad =
            [("   ", "only spaces"), (&"n".repeat(101) as &str, "101 characters"), ("Ada\u{202e}", "an override")];
        for (value, why) in bad {
            assert!(display_name(value).is_err(), "{value:?} was accepted ({why})");
        }
        assert_eq!(display_name("  Ada Lovelace ").as_deref(), Ok("Ada Lovelace"));
        assert_eq!(display_name("").as_deref(), Ok(""), "an empty display name clears it");
    }

    #[test]
    fn roles_must_be_given_ones() {
        let bad = [(Role::Unspecified as i32, "unspecified"), (42, "an unknown number"), (-1, "negative")];
        for (value, why) in bad {
            assert!(role(value).is_err(), "{value} was accepted ({why})");
        }
        assert_eq!(role(Role::Moderator as i32), Ok(Role::Moderator));
    }

    #[test]
    fn keys_ignore_case() {
        assert_eq!(key("John_Doe"), key("jOHN_dOE"));
    }
}
