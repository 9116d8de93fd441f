//! List filters: the AIP-160 subset Fabula supports, `field = value` terms joined by
//! `AND`, each field one the list declares. Values are quoted strings or bare words.

use super::{
    super::errors::quote,
    error::{Result, invalid},
    pagination::{Bind, Sql},
};

/// A field a list can be filtered on.
pub struct Field {
    pub name: &'static str,
    pub column: &'static str,
    pub kind: Kind,
}

/// What a field's value must be.
pub enum Kind {
    /// Any text, compared exactly.
    Text,
    /// `true` or `false`, stored as 0/1.
    Bool,
    /// The name of a value of a proto enum, as the given parser accepts it.
    Enum(fn(&str) -> bool),
}

/// Appends ` AND column = $n` for each term of `filter` to `sql`.
pub fn apply(filter: &str, fields: &[Field], sql: &mut Sql) -> Result<()> {
    for (name, value) in parse(filter)? {
        let field = fields.iter().find(|f| f.name == name).ok_or_else(|| {
            let known: Vec<_> = fields.iter().map(|f| f.name).collect();
            invalid("filter", format!("cannot filter on {}; use one of {}", quote(&name), known.join(", ")))
        })?;
        let bind = match field.kind {
            Kind::Text => Bind::Text(value),
            Kind::Bool => match value.as_str() {
                "true" => Bind::Int(1),
                "false" => Bind::Int(0),
                _ => {
                    return Err(invalid("filter", format!("{name} takes true or false, not {}", quote(&value))));
                }
            },
            Kind::Enum(accepts) if accepts(&value) => Bind::Text(value),
            Kind::Enum(_) => {
                return Err(invalid("filter", format!("{} is not a value of {name}", quote(&value))));
            }
        };
        sql.push(" AND ").push(field.column).push(" = ").bind(bind);
    }
    Ok(())
}

/// Splits `a = "x" AND b = y` into its terms.
fn parse(filter: &str) -> Result<Vec<(String, String)>> {
    let mut terms = Vec::new();
    let mut rest = filter.trim();
    while !rest.is_empty() {
        let (name, after_name) = rest.split_once('=').ok_or_else(|| malformed(rest))?;
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(malformed(rest));
        }
        let after_name = after_name.trim_start();
        let (value, after_value) = if let Some(quoted) = after_name.strip_prefix('"') {
            let end = quoted.find('"').ok_or_else(|| invalid("filter", "a quoted value is not closed"))?;
            (quoted[..end].to_owned(), &quoted[end + 1..])
        } else {
            let end = after_name.find(char::is_whitespace).unwrap_or(after_name.len());
            (after_name[..end].to_owned(), &after_name[end..])
        };
        if value.is_empty() {
            return Err(malformed(rest));
        }
        terms.push((name.to_owned(), value));
        rest = after_value.trim_start();
        if !rest.is_empty() {
            rest = rest.strip_prefix("AND ").ok_or_else(|| malformed(rest))?.trim_start();
        }
    }
    Ok(terms)
}

fn malformed(at: &str) -> super::error::Error {
    invalid("filter", format!("expected `field = value` terms joined by AND near {}", quote(at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[
        Field { name: "genre", column: "genre", kind: Kind::Text },
        Field { name: "disabled", column: "disabled", kind: Kind::Bool },
        Field { name: "visibility", column: "visibility", kind: Kind::Enum(|v| v == "PUBLIC") },
    ];

    #[test]
    fn terms_become_conditions() {
        let mut sql = Sql::new("WHERE 1 = 1");
        apply(r#"genre = "high fantasy" AND disabled = true AND visibility=PUBLIC"#, FIELDS, &mut sql).unwrap();
        assert_eq!(sql.text(), "WHERE 1 = 1 AND genre = $1 AND disabled = $2 AND visibility = $3");
    }

    #[test]
    fn bad_filters_are_invalid_arguments() {
        let cases = [
            ("genre", "no operator"),
            ("owner = x", "unknown field"),
            ("disabled = maybe", "not a bool"),
            ("visibility = SECRET", "not an enum value"),
            (r#"genre = "open"#, "unclosed quote"),
            ("genre = a OR genre = b", "OR is not supported"),
            ("genre = ", "empty value"),
            ("ge nre = a", "space in name"),
        ];
        for (filter, why) in cases {
            let mut sql = Sql::new("");
            assert!(apply(filter, FIELDS, &mut sql).is_err(), "{filter:?} was accepted ({why})");
        }
    }
}
