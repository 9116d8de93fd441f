//! List filters: the AIP-160 subset Fabula supports, `field = value` terms joined by
//! ` AND `, each field one the list's rule declares (`fabula.options.v1.rules`). A
//! value is a word without spaces or quotes, or any text but quotes in double
//! quotes. The grammar is exactly the pattern [`rules::pattern`] publishes.

use fabula_runtime::{
    errors::quote,
    rules::{self, FilterValues},
};

use crate::{
    error::{Error, Result, invalid},
    pagination::{Bind, Listing, Sql},
};

/// Appends ` AND column = $n` to `sql` for each term of `filter`, a filter of the
/// list `listing` (its declared fields, and their columns).
pub fn apply(filter: &str, listing: &Listing, sql: &mut Sql) -> Result<()> {
    let (rule, columns) = (listing.filter, listing.columns);
    rules::text(filter, rule).map_err(|problem| invalid("filter", problem))?;
    for (name, value) in parse(filter)? {
        let Some(field) = rule.filter.iter().find(|f| f.name == name) else {
            let known: Vec<_> = rule.filter.iter().map(|f| f.name).collect();
            return Err(invalid(
                "filter",
                format!("cannot filter on {}; use one of {}", quote(name), known.join(", ")),
            ));
        };
        let column = columns
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, column)| *column)
            .ok_or_else(|| Error::Internal(format!("the filter field {name} has no column")))?;
        let bind = match field.values {
            FilterValues::Text => Bind::Text(value.to_owned()),
            FilterValues::Bool => match value {
                "true" => Bind::Int(1),
                "false" => Bind::Int(0),
                _ => return Err(invalid("filter", format!("{name} takes true or false, not {}", quote(value)))),
            },
            FilterValues::Names(names) if names.contains(&value) => Bind::Text(value.to_owned()),
            FilterValues::Names(names) => {
                let message = format!("{} is not a value of {name}: use one of {}", quote(value), names.join(", "));
                return Err(invalid("filter", message));
            }
        };
        sql.push(" AND ").push(column).push(" = ").bind(bind);
    }
    Ok(())
}

/// Splits `a = "x" AND b = y` into its terms. Spaces separate; other white space is
/// part of a word.
fn parse(filter: &str) -> Result<Vec<(&str, &str)>> {
    let mut terms = Vec::new();
    let mut rest = filter.trim_matches(' ');
    while !rest.is_empty() {
        let name_end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let (name, after_name) = rest.split_at(name_end);
        let after_equals = after_name.trim_start_matches(' ').strip_prefix('=').filter(|_| !name.is_empty());
        let after_equals = after_equals.ok_or_else(|| malformed(rest))?.trim_start_matches(' ');
        let (value, after_value) = match after_equals.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').ok_or_else(|| invalid("filter", "a quoted value is not closed"))?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => after_equals.split_at(after_equals.find([' ', '"']).unwrap_or(after_equals.len())),
        };
        if value.is_empty() || after_value.starts_with('"') {
            return Err(malformed(rest));
        }
        terms.push((name, value));
        rest = after_value;
        if !rest.is_empty() {
            let and = rest.strip_prefix(' ').map(|r| r.trim_start_matches(' ')).and_then(|r| r.strip_prefix("AND "));
            rest = and.ok_or_else(|| malformed(rest))?.trim_start_matches(' ');
            if rest.is_empty() {
                return Err(malformed("AND"));
            }
        }
    }
    Ok(terms)
}

fn malformed(at: &str) -> Error {
    invalid("filter", format!("expected `field = value` terms joined by AND near {}", quote(at)))
}

#[cfg(test)]
mod tests {
    use fabula_runtime::rules::{EMPTY, FilterField, Rule, TextKind};

    use super::*;

    const RULE: Rule = Rule {
        text: TextKind::Filter,
        max_length: 100,
        filter: &[
            FilterField { name: "genre", values: FilterValues::Text },
            FilterField { name: "disabled", values: FilterValues::Bool },
            FilterField { name: "visibility", values: FilterValues::Names(&["PUBLIC", "DRAFT"]) },
        ],
        ..EMPTY
    };
    const LISTING: Listing = Listing {
        page_size: &EMPTY,
        page_token: &EMPTY,
        filter: &RULE,
        columns: &[("genre", "genre"), ("disabled", "disabled"), ("visibility", "visibility")],
    };

    fn apply_to(filter: &str) -> Result<String> {
        let mut sql = Sql::new("WHERE 1 = 1");
        apply(filter, &LISTING, &mut sql).map(|()| sql.text().to_owned())
    }

    #[test]
    fn terms_become_conditions() {
        let sql = apply_to(r#"genre = "high fantasy" AND disabled = true AND  visibility=PUBLIC "#).unwrap();
        assert_eq!(sql, "WHERE 1 = 1 AND genre = $1 AND disabled = $2 AND visibility = $3");
        assert_eq!(apply_to("").unwrap(), "WHERE 1 = 1");
    }

    struct Bad {
        filter: &'static str,
        why: &'static str,
    }

    #[test]
    fn bad_filters_are_invalid_arguments() {
        #[rustfmt::skip]
        let cases = [
            Bad { filter: "genre", why: "no operator" },
            Bad { filter: "owner = x", why: "unknown field" },
            Bad { filter: "disabled = maybe", why: "not a bool" },
            Bad { filter: "visibility = SECRET", why: "not an enum value" },
            Bad { filter: r#"genre = "open"#, why: "unclosed quote" },
            Bad { filter: "genre = a OR genre = b", why: "OR is not supported" },
            Bad { filter: "genre = ", why: "empty value" },
            Bad { filter: "ge nre = a", why: "space in name" },
            Bad { filter: "genre = a AND", why: "a dangling AND" },
            Bad { filter: r#"genre = "a"AND genre = b"#, why: "no space before AND" },
            Bad { filter: r#"genre = a"b"#, why: "a quote inside a word" },
            Bad { filter: "genre = a\tAND genre = b", why: "a tab is part of a word, so AND is a second word" },
            Bad { filter: "genre = \0", why: "NUL" },
        ];
        for case in cases {
            assert!(apply_to(case.filter).is_err(), "{:?} was accepted ({})", case.filter, case.why);
        }
        let long = format!("genre = {}", "a".repeat(100_000));
        let error = tonic::Status::from(apply_to(&long).unwrap_err());
        assert!(error.message().len() < 200, "{}", error.message());
    }

    #[test]
    fn the_published_pattern_is_the_grammar() {
        let pattern = regex::Regex::new(&rules::pattern(&RULE).unwrap()).unwrap();
        let words =
            ["genre", "disabled", "visibility", "=", " ", "  ", "AND", "\"", "a", "true", "PUBLIC", "\t", "x y"];
        // Every sequence of up to four words.
        let mut samples = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> =
                samples.iter().flat_map(|s| words.iter().map(move |w| format!("{s}{w}"))).collect();
            samples.extend(longer);
        }
        samples.push(r#"genre = "a b" AND disabled = "true""#.to_owned());
        for sample in samples {
            assert_eq!(pattern.is_match(&sample), apply_to(&sample).is_ok(), "{sample:?}");
        }
    }
}
