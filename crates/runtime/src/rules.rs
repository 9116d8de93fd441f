//! The rules of request fields the contracts declare ([`fabula_contracts::rules`],
//! re-exported here), and what they mean. The services check values with [`text`]
//! and [`Checks`]; the gateway publishes each rule in the OpenAPI document with
//! [`pattern`]. The checks and the patterns are built from the same character tables,
//! so what the document allows is exactly what the services take.

use std::fmt::Write as _;

pub use fabula_contracts::rules::*;

use crate::errors::{FieldViolations, quote};

/// Characters no text but PROSE and SECRET may hold: C0 and C1 controls and DEL.
const CONTROL: &[(char, char)] = &[('\u{0}', '\u{1f}'), ('\u{7f}', '\u{9f}')];
/// Characters a NAME may not hold beside the controls: line and paragraph separators,
/// and the bidirectional embeddings, overrides and isolates.
const NOT_IN_NAMES: &[(char, char)] = &[('\u{2028}', '\u{202e}'), ('\u{2066}', '\u{2069}')];
/// Unicode's White_Space characters, as `char::is_whitespace` knows them.
const WHITE_SPACE: &[(char, char)] = &[
    ('\u{9}', '\u{d}'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];
/// Characters that show nothing, which a NAME may hold but not consist of: the soft
/// hyphen, joiners and zero-width spaces, marks, fillers, variation selectors, the
/// byte-order mark and the blank braille pattern.
const INVISIBLE: &[(char, char)] = &[
    ('\u{ad}', '\u{ad}'),
    ('\u{34f}', '\u{34f}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{115f}', '\u{1160}'),
    ('\u{17b4}', '\u{17b5}'),
    ('\u{180b}', '\u{180f}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{206a}', '\u{206f}'),
    ('\u{2800}', '\u{2800}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{fe00}', '\u{fe0f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{ffa0}', '\u{ffa0}'),
];
const NUL: &[(char, char)] = &[('\u{0}', '\u{0}')];

fn within(c: char, table: &[(char, char)]) -> bool {
    table.iter().any(|&(low, high)| (low..=high).contains(&c))
}

fn is_white_space(c: char) -> bool {
    within(c, WHITE_SPACE)
}

/// Checks `value` against `rule` and returns it as it is stored: a NAME without its
/// surrounding white space, anything else as sent. The error describes the problem,
/// for the caller to file under the field's name.
pub fn text(value: &str, rule: &Rule) -> Result<String, String> {
    let length = value.chars().count();
    if length == 0 && rule.min_length > 0 {
        return Err("is required".into());
    }
    if length < rule.min_length {
        return Err(format!("must have at least {} characters, not {length}", rule.min_length));
    }
    if rule.max_length > 0 && length > rule.max_length {
        return Err(format!("must have at most {} characters, not {length}", rule.max_length));
    }
    if rule.max_bytes > 0 && value.len() > rule.max_bytes {
        return Err(format!("must have at most {} bytes of UTF-8, not {}", rule.max_bytes, value.len()));
    }
    if length == 0 {
        return Ok(String::new());
    }
    match rule.text {
        TextKind::Name => name(value).map(|()| value.trim().to_owned()),
        TextKind::Id => id(value).map(|()| value.to_owned()),
        TextKind::Handle => handle(value).map(|()| value.to_owned()),
        TextKind::Email => email(value).map(|()| value.to_owned()),
        TextKind::Prose if rule.min_length > 0 => not_blank(value).map(|()| value.to_owned()),
        TextKind::Prose | TextKind::Filter | TextKind::FieldMask | TextKind::Unspecified => {
            no_nul(value).map(|()| value.to_owned())
        }
    }
}

fn no_nul(value: &str) -> Result<(), String> {
    if value.contains('\0') { Err("must not contain NUL characters".into()) } else { Ok(()) }
}

fn name(value: &str) -> Result<(), String> {
    if let Some(bad) = value.chars().find(|&c| within(c, CONTROL) || within(c, NOT_IN_NAMES)) {
        return Err(format!(
            "must be one line without control or text-direction characters, not {}",
            bad.escape_unicode()
        ));
    }
    if value.chars().all(|c| is_white_space(c) || within(c, INVISIBLE)) {
        return Err("must have a visible character".into());
    }
    Ok(())
}

/// A UUID in its hyphenated form only: not braced, not a URN, not 32 bare digits.
fn id(value: &str) -> Result<(), String> {
    let hyphenated = value.len() == 36
        && value
            .char_indices()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() });
    if hyphenated {
        Ok(())
    } else {
        Err(format!("{} is not an id: ids look like 0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c", quote(value)))
    }
}

fn handle(value: &str) -> Result<(), String> {
    match value.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        Some(bad) => Err(format!("may only hold letters, digits, `_` and `-`, not {}", bad.escape_debug())),
        None => Ok(()),
    }
}

fn email(value: &str) -> Result<(), String> {
    if value.chars().any(|c| is_white_space(c) || within(c, CONTROL)) {
        return Err("must not contain spaces or control characters".into());
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
    Ok(())
}

/// PROSE that is required: not only white space.
fn not_blank(value: &str) -> Result<(), String> {
    no_nul(value)?;
    if value.chars().all(is_white_space) { Err("must not be only white space".into()) } else { Ok(()) }
}

/// The checks of a declared [`Rule`] beyond [`text`]: counts, lists, map keys and
/// integers.
pub trait Checks {
    /// A list or map of `count` items against `min_items` and `max_items`.
    fn check_count(&self, count: usize) -> Result<(), String>;
    /// A list `field`: its number of items (filed under `field`), each item against
    /// [`text`] and, when `unique_items`, none twice (filed under `field[i]`). The items
    /// as stored, when all are good.
    fn check_list(&self, field: &str, items: &[String], violations: &mut FieldViolations) -> Option<Vec<String>>;
    /// A map key: a NAME of 1 to `max_key_length` characters.
    fn check_key(&self, key: &str) -> Result<String, String>;
    /// An integer against `minimum` and `maximum`.
    fn check_int(&self, value: i64) -> Result<i64, String>;
}

impl Checks for Rule {
    fn check_count(&self, count: usize) -> Result<(), String> {
        if count < self.min_items {
            return Err(format!("must hold at least {} items", self.min_items));
        }
        if self.max_items > 0 && count > self.max_items {
            return Err(format!("may hold at most {} items, not {count}", self.max_items));
        }
        Ok(())
    }

    fn check_list(&self, field: &str, items: &[String], violations: &mut FieldViolations) -> Option<Vec<String>> {
        if let Err(problem) = self.check_count(items.len()) {
            violations.add(field, problem);
            return None;
        }
        let mut checked: Vec<String> = Vec::with_capacity(items.len());
        let mut all_good = true;
        for (index, item) in items.iter().enumerate() {
            let problem = match text(item, self) {
                Ok(item) if self.unique_items && checked.contains(&item) => format!("{} appears twice", quote(&item)),
                Ok(item) => {
                    checked.push(item);
                    continue;
                }
                Err(problem) => problem,
            };
            violations.add(format!("{field}[{index}]"), problem);
            all_good = false;
        }
        all_good.then_some(checked)
    }

    fn check_key(&self, key: &str) -> Result<String, String> {
        let rule = Rule { text: TextKind::Name, min_length: 1, max_length: self.max_key_length, ..EMPTY };
        text(key, &rule).map_err(|problem| format!("key {}: {problem}", quote(key)))
    }

    fn check_int(&self, value: i64) -> Result<i64, String> {
        match (self.minimum, self.maximum) {
            (Some(min), _) if value < min => Err(format!("must be at least {min}, not {value}")),
            (_, Some(max)) if value > max => Err(format!("must be at most {max}, not {value}")),
            _ => Ok(value),
        }
    }
}

/// The ECMA-262 regular expression a value must match, for a JSON Schema `pattern`;
/// `None` when the lengths say all (PROSE without NUL is still a pattern).
pub fn pattern(rule: &Rule) -> Option<String> {
    let optional = rule.min_length == 0;
    let body = match rule.text {
        TextKind::Unspecified => return None,
        TextKind::Prose if optional => format!("[^{}]*", class(&[NUL])),
        TextKind::Prose => {
            let nul = class(&[NUL]);
            let blank = class(&[NUL, WHITE_SPACE]);
            format!("[^{nul}]*[^{blank}][^{nul}]*")
        }
        TextKind::Name => {
            let forbidden = class(&[CONTROL, NOT_IN_NAMES]);
            let blank = class(&[CONTROL, NOT_IN_NAMES, WHITE_SPACE, INVISIBLE]);
            format!("[^{forbidden}]*[^{blank}][^{forbidden}]*")
        }
        TextKind::Id => "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}".into(),
        TextKind::Handle => "[A-Za-z0-9_-]+".into(),
        TextKind::Email => {
            let not = class(&[WHITE_SPACE, CONTROL]);
            format!("[^@{not}]+@[^@.{not}][^@{not}]*\\.[^@{not}]*[^@.{not}]")
        }
        TextKind::Filter => filter_pattern(rule),
        TextKind::FieldMask => mask_pattern(rule),
    };
    Some(if optional { format!("^(?:{body})?$") } else { format!("^(?:{body})$") })
}

/// `field = value` terms joined by ` AND `, each field one of `filter`.
fn filter_pattern(rule: &Rule) -> String {
    let terms: Vec<String> = rule
        .filter
        .iter()
        .map(|field| {
            let value = match field.values {
                FilterValues::Text => format!("\"[^\"{nul}]+\"|[^ \"{nul}]+", nul = class(&[NUL])),
                FilterValues::Bool => "true|false|\"true\"|\"false\"".into(),
                FilterValues::Names(names) => {
                    let names = names.join("|");
                    format!("{names}|\"(?:{names})\"")
                }
            };
            format!("{} *= *(?:{value})", field.name)
        })
        .collect();
    let term = format!("(?:{})", terms.join("|"));
    format!(" *(?:{term}(?: +AND +{term})*)? *")
}

/// Comma-separated paths of `paths` (by proto or JSON name).
fn mask_pattern(rule: &Rule) -> String {
    let mut names: Vec<String> = Vec::new();
    for path in rule.paths {
        for name in [(*path).to_owned(), lower_camel(path)] {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let path = format!("(?:{})", names.join("|"));
    format!("{path}(?:,{path})*")
}

/// A proto field name as the JSON mapping writes it: `entity_ids` → `entityIds`.
pub fn lower_camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        match c {
            '_' => upper = true,
            _ if upper => {
                out.push(c.to_ascii_uppercase());
                upper = false;
            }
            _ => out.push(c),
        }
    }
    out
}

/// The inside of a regular-expression character class holding `tables`, each
/// character written `\uXXXX` (all are in the Basic Multilingual Plane).
fn class(tables: &[&[(char, char)]]) -> String {
    let mut out = String::new();
    for &(low, high) in tables.iter().copied().flatten() {
        let _ = write!(out, "\\u{:04x}", u32::from(low));
        if high != low {
            let _ = write!(out, "-\\u{:04x}", u32::from(high));
        }
    }
    out
}

#[cfg(test)]
mod tests;
