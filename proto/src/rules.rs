//! The rules of request fields, declared once in the contracts
//! (`fabula.options.v1.rules`) and generated into constants, a module per package and
//! message: `rules::story::world::NAME`, with [`declared`] to find one by the field's
//! full name. What they mean, and the checks, are `fabula_runtime::rules`.

pub use crate::pb::fabula::options::v1::TextKind;

/// One field's declared rules (see `rules.proto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub text: TextKind,
    /// Characters at least: the declared `min_length`, or 1 for a REQUIRED field.
    pub min_length: usize,
    /// Characters at most; 0 for no limit.
    pub max_length: usize,
    /// Bytes of UTF-8 at most; 0 for no limit.
    pub max_bytes: usize,
    /// At least this many items: 1 for a REQUIRED repeated field.
    pub min_items: usize,
    pub max_items: usize,
    pub max_key_length: usize,
    pub minimum: Option<i64>,
    pub maximum: Option<i64>,
    pub filter: &'static [FilterField],
    pub paths: &'static [&'static str],
    pub unique_items: bool,
    /// An enum: its UNSPECIFIED value (0) is refused.
    pub specified: bool,
}

/// A field a list's filter may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterField {
    pub name: &'static str,
    pub values: FilterValues,
}

/// What a filter field compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterValues {
    Text,
    Bool,
    /// One of these names.
    Names(&'static [&'static str]),
}

include!(concat!(env!("OUT_DIR"), "/rules_table.rs"));

/// The rule of a field that declares nothing, to build others from.
pub const EMPTY: Rule = Rule {
    text: TextKind::Unspecified,
    min_length: 0,
    max_length: 0,
    max_bytes: 0,
    min_items: 0,
    max_items: 0,
    max_key_length: 0,
    minimum: None,
    maximum: None,
    filter: &[],
    paths: &[],
    unique_items: false,
    specified: false,
};
