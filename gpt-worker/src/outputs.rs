//! What each job kind expects back from the model, and the validators that turn the model's text
//! into it. JSON replies may be wrapped in ```json fences or in a sentence of prose; values are
//! trimmed and clipped to story-service's limits, empty names dropped, duplicates (ignoring case)
//! removed and lists cut to [`MAX_ITEMS`]. What cannot be repaired that way is an [`OutputError`],
//! told in detail to the model in one repair attempt, and without the model's words to the job's
//! owner.
//!
//! The `*_SHAPE` constants are examples of each shape, for prompts to quote.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The most items of any list kept from a reply.
pub const MAX_ITEMS: usize = 50;
/// Names, event titles and linked names.
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_ENTITY_TYPE_CHARS: usize = 50;
pub const MAX_ERA_CHARS: usize = 100;
/// Descriptions and suggestions.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// A story's summary.
pub const MAX_SUMMARY_CHARS: usize = 2_000;
/// The entity type given to entities the model did not type.
pub const DEFAULT_ENTITY_TYPE: &str = "character";
/// How many suggestions a paraphrase gives.
pub const SUGGESTION_COUNT: usize = 3;

pub const ANALYSIS_SHAPE: &str = r#"{"entities": [{"name": "Mira Vale", "entity_type": "character", "description": "A sailor."}], "locations": [{"name": "Port Sorrow", "description": "A harbour town."}]}"#;
pub const EVENTS_SHAPE: &str = r#"{"events": [{"title": "Mira leaves Port Sorrow", "description": "Mira sails north.", "year": 1204, "era": "Age of Embers", "entities": ["Mira Vale"], "locations": ["Port Sorrow"], "story_position": 1}]}"#;
pub const SUGGESTIONS_SHAPE: &str = r#"{"suggestions": ["First rewording.", "Second rewording.", "Third rewording."]}"#;

/// What an analysis reply must be.
const ANALYSIS_EXPECTED: &str = "a JSON object with `entities` and `locations` lists";
/// What an events reply must be.
const EVENTS_EXPECTED: &str = "a JSON object with an `events` list of objects";
/// What a suggestions reply must be.
const SUGGESTIONS_EXPECTED: &str = "a JSON object with a `suggestions` list of strings";

/// Why a reply could not be used. Its `Display` is the detail told to the model in the repair
/// request, and may quote the reply; [`OutputError::for_owner`] says what is wrong without quoting
/// it, for the job's error message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    #[error("the reply is empty")]
    Empty,
    #[error("the reply holds no JSON object")]
    NoJson,
    /// A JSON syntax error at `line` and `column`.
    #[error("the reply is not valid JSON: {detail}")]
    NotJson { detail: String, line: usize, column: usize },
    /// JSON that is not what was `expected`.
    #[error("the reply does not have the expected JSON shape: {detail}")]
    WrongShape { expected: &'static str, detail: String },
    /// A value that cannot be used: `problem` says which, `detail` may quote the reply.
    #[error("{detail}")]
    Invalid { problem: String, detail: String },
}

impl OutputError {
    /// What is wrong with the reply, quoting none of it: safe to show the job's owner.
    pub fn for_owner(&self) -> String {
        match self {
            Self::Empty | Self::NoJson => self.to_string(),
            Self::NotJson { line, column, .. } => format!("the reply is not valid JSON (line {line}, column {column})"),
            Self::WrongShape { expected, .. } => format!("the reply is not {expected}"),
            Self::Invalid { problem, .. } => problem.clone(),
        }
    }
}

/// The characters, other entities and locations found in a story.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    pub entities: Vec<FoundEntity>,
    pub locations: Vec<FoundLocation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundEntity {
    pub name: String,
    pub entity_type: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundLocation {
    pub name: String,
    pub description: String,
}

/// Timeline events found in a story or world.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractedEvents {
    pub events: Vec<FoundEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundEvent {
    pub title: String,
    pub description: String,
    /// In the world's calendar.
    pub year: i64,
    /// May be empty.
    pub era: String,
    /// Names of the entities taking part.
    pub entities: Vec<String>,
    /// Names of the locations where it happens.
    pub locations: Vec<String>,
    /// Order within the story, for events of the same year; 1-based.
    pub story_position: i64,
}

/// Exactly [`SUGGESTION_COUNT`] distinct, non-empty rewordings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestions {
    pub suggestions: Vec<String>,
}

/// A description: trimmed, not empty, at most [`MAX_TEXT_CHARS`] characters.
pub fn parse_description(reply: &str) -> Result<String, OutputError> {
    let text = clip(reply, MAX_TEXT_CHARS);
    if text.is_empty() { Err(OutputError::Empty) } else { Ok(text) }
}

/// A story's summary: a description of at most [`MAX_SUMMARY_CHARS`] characters.
pub fn parse_summary(reply: &str) -> Result<String, OutputError> {
    let text = clip(reply, MAX_SUMMARY_CHARS);
    if text.is_empty() { Err(OutputError::Empty) } else { Ok(text) }
}

/// An analysis: `{"entities": [...], "locations": [...]}`; one of the two lists may be missing.
pub fn parse_analysis(reply: &str) -> Result<Analysis, OutputError> {
    let raw: RawAnalysis = parse_json(reply, ANALYSIS_EXPECTED)?;
    if raw.entities.is_none() && raw.locations.is_none() {
        let detail = format!("expected {ANALYSIS_EXPECTED}");
        return Err(OutputError::WrongShape { expected: ANALYSIS_EXPECTED, detail });
    }
    let entities = raw.entities.unwrap_or_default().into_iter().filter_map(RawEntity::clean);
    let locations = raw.locations.unwrap_or_default().into_iter().filter_map(RawLocation::clean);
    Ok(Analysis {
        entities: dedupe(entities, |e| e.name.to_lowercase()),
        locations: dedupe(locations, |l| l.name.to_lowercase()),
    })
}

/// Events: `{"events": [...]}`; every event needs a title and a year.
pub fn parse_events(reply: &str) -> Result<ExtractedEvents, OutputError> {
    let raw: RawEvents = parse_json(reply, EVENTS_EXPECTED)?;
    let mut events = Vec::new();
    for (index, event) in raw.events.into_iter().enumerate() {
        if let Some(event) = event.clean(index)? {
            events.push(event);
        }
    }
    Ok(ExtractedEvents { events: dedupe(events.into_iter(), |e| (e.title.to_lowercase(), e.year)) })
}

/// Suggestions: `{"suggestions": [...]}` or a bare list; the first three distinct ones are kept.
pub fn parse_suggestions(reply: &str) -> Result<Suggestions, OutputError> {
    let raw: RawSuggestions = parse_json(reply, SUGGESTIONS_EXPECTED)?;
    let list = match raw {
        RawSuggestions::Object { suggestions } | RawSuggestions::List(suggestions) => suggestions,
    };
    let cleaned = list.iter().map(|s| clip(s, MAX_TEXT_CHARS)).filter(|s| !s.is_empty());
    let mut suggestions = dedupe(cleaned, |s| s.to_lowercase());
    if suggestions.len() < SUGGESTION_COUNT {
        let problem = format!("expected {SUGGESTION_COUNT} distinct, non-empty suggestions, got {}", suggestions.len());
        return Err(OutputError::Invalid { detail: problem.clone(), problem });
    }
    suggestions.truncate(SUGGESTION_COUNT);
    Ok(Suggestions { suggestions })
}

#[derive(Debug, Deserialize)]
struct RawAnalysis {
    #[serde(default)]
    entities: Option<Vec<RawEntity>>,
    #[serde(default)]
    locations: Option<Vec<RawLocation>>,
}

#[derive(Debug, Deserialize)]
struct RawEntity {
    name: Option<String>,
    #[serde(default, alias = "type")]
    entity_type: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

impl RawEntity {
    fn clean(self) -> Option<FoundEntity> {
        let name = clean_name(self.name.as_deref())?;
        let entity_type = clip(self.entity_type.as_deref().unwrap_or_default(), MAX_ENTITY_TYPE_CHARS);
        Some(FoundEntity {
            name,
            entity_type: if entity_type.is_empty() { DEFAULT_ENTITY_TYPE.to_owned() } else { entity_type },
            description: clip(self.description.as_deref().unwrap_or_default(), MAX_TEXT_CHARS),
        })
    }
}

#[derive(Debug, Deserialize)]
struct RawLocation {
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

impl RawLocation {
    fn clean(self) -> Option<FoundLocation> {
        Some(FoundLocation {
            name: clean_name(self.name.as_deref())?,
            description: clip(self.description.as_deref().unwrap_or_default(), MAX_TEXT_CHARS),
        })
    }
}

#[derive(Debug, Deserialize)]
struct RawEvents {
    events: Vec<RawEvent>,
}

#[derive(Debug, Deserialize)]
struct RawEvent {
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    year: Option<RawNumber>,
    #[serde(default)]
    era: Option<String>,
    #[serde(default)]
    entities: Vec<String>,
    #[serde(default)]
    locations: Vec<String>,
    #[serde(default)]
    story_position: Option<RawNumber>,
}

/// A whole number, which models sometimes write as a string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawNumber {
    Number(i64),
    Text(String),
}

impl RawNumber {
    fn value(&self) -> Option<i64> {
        match self {
            RawNumber::Number(n) => Some(*n),
            RawNumber::Text(text) => text.trim().parse().ok(),
        }
    }
}

impl RawEvent {
    /// The event, `None` when it has no title, or an error when it has no usable year.
    fn clean(self, index: usize) -> Result<Option<FoundEvent>, OutputError> {
        let Some(title) = clean_name(self.title.as_deref()) else { return Ok(None) };
        let year = self.year.as_ref().and_then(RawNumber::value).ok_or_else(|| OutputError::Invalid {
            problem: format!("event {} needs a whole-number `year`", index + 1),
            detail: format!("event {} ({title:?}) needs a whole-number `year`", index + 1),
        })?;
        let position = self.story_position.as_ref().and_then(RawNumber::value);
        Ok(Some(FoundEvent {
            description: clip(self.description.as_deref().unwrap_or_default(), MAX_TEXT_CHARS),
            year,
            era: clip(self.era.as_deref().unwrap_or_default(), MAX_ERA_CHARS),
            entities: clean_names(&self.entities),
            locations: clean_names(&self.locations),
            story_position: position.unwrap_or(index as i64 + 1),
            title,
        }))
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawSuggestions {
    Object { suggestions: Vec<String> },
    List(Vec<String>),
}

/// Deserializes the JSON value of a reply, which should be `expected`.
fn parse_json<T: DeserializeOwned>(reply: &str, expected: &'static str) -> Result<T, OutputError> {
    let json = json_text(reply)?;
    serde_json::from_str(json).map_err(|error| match error.classify() {
        serde_json::error::Category::Data => OutputError::WrongShape { expected, detail: error.to_string() },
        _ => OutputError::NotJson { detail: error.to_string(), line: error.line(), column: error.column() },
    })
}

/// The JSON inside a reply: without ```json fences, or from the first `{` to the last `}` when
/// prose surrounds it.
fn json_text(reply: &str) -> Result<&str, OutputError> {
    let text = strip_fences(reply.trim());
    if text.is_empty() {
        return Err(OutputError::Empty);
    }
    if text.starts_with(['{', '[']) {
        return Ok(text);
    }
    match (text.find('{'), text.rfind('}')) {
        (Some(start), Some(end)) if start < end => Ok(&text[start..=end]),
        _ => Err(OutputError::NoJson),
    }
}

/// The text between a leading ```` ```lang ```` line and a closing ```` ``` ````, if fenced.
fn strip_fences(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("```") else { return text };
    let body = rest.split_once('\n').map_or("", |(_, body)| body);
    body.trim_end().strip_suffix("```").unwrap_or(body).trim()
}

/// A name trimmed and clipped, or `None` when empty.
fn clean_name(name: Option<&str>) -> Option<String> {
    Some(clip(name?, MAX_NAME_CHARS)).filter(|name| !name.is_empty())
}

/// Names trimmed, clipped, without empty ones and duplicates.
fn clean_names(names: &[String]) -> Vec<String> {
    dedupe(names.iter().filter_map(|name| clean_name(Some(name))), |name| name.to_lowercase())
}

/// Without NUL characters (story-service refuses them), trimmed and cut to at most
/// `max` characters.
fn clip(text: &str, max: usize) -> String {
    let text = text.replace('\0', "");
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((cut, _)) => text[..cut].trim_end().to_owned(),
        None => text.to_owned(),
    }
}

/// The first [`MAX_ITEMS`] items with distinct keys, in order.
fn dedupe<T, K: PartialEq>(items: impl Iterator<Item = T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut seen = Vec::new();
    let mut kept = Vec::new();
    for item in items {
        let item_key = key(&item);
        if !seen.contains(&item_key) {
            seen.push(item_key);
            kept.push(item);
            if kept.len() == MAX_ITEMS {
                break;
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_examples_parse() {
        assert_eq!(parse_analysis(ANALYSIS_SHAPE).unwrap().entities[0].name, "Mira Vale");
        assert_eq!(parse_events(EVENTS_SHAPE).unwrap().events[0].year, 1204);
        assert_eq!(parse_suggestions(SUGGESTIONS_SHAPE).unwrap().suggestions.len(), 3);
    }

    #[test]
    fn analysis_is_cleaned() {
        let reply = "Here you go:\n```json\n{\"entities\": [\
            {\"name\": \"  Mira  \", \"type\": \"person\"},\
            {\"name\": \"MIRA\", \"entity_type\": \"character\", \"description\": \"again\"},\
            {\"name\": \"\", \"entity_type\": \"character\"},\
            {\"name\": null},\
            {\"name\": \"Tomas\", \"entity_type\": \"  \"}]}\n```";
        let analysis = parse_analysis(reply).unwrap();
        let entities: Vec<_> = analysis.entities.iter().map(|e| (e.name.as_str(), e.entity_type.as_str())).collect();
        assert_eq!(entities, [("Mira", "person"), ("Tomas", DEFAULT_ENTITY_TYPE)]);
        assert!(analysis.locations.is_empty());
    }

    #[test]
    fn long_values_and_lists_are_clipped() {
        let long_name = "é".repeat(MAX_NAME_CHARS + 20);
        let many: Vec<_> = (0..MAX_ITEMS + 10).map(|i| serde_json::json!({"name": format!("Place {i}")})).collect();
        let reply = serde_json::json!({
            "entities": [{"name": long_name, "entity_type": "x".repeat(80), "description": "d".repeat(20_000)}],
            "locations": many,
        });
        let analysis = parse_analysis(&reply.to_string()).unwrap();
        assert_eq!(analysis.entities[0].name.chars().count(), MAX_NAME_CHARS);
        assert_eq!(analysis.entities[0].entity_type.len(), MAX_ENTITY_TYPE_CHARS);
        assert_eq!(analysis.entities[0].description.len(), MAX_TEXT_CHARS);
        assert_eq!(analysis.locations.len(), MAX_ITEMS);
    }

    #[test]
    fn events_are_cleaned() {
        let reply = r#"{"events": [
            {"title": "Fall", "year": "1204", "entities": ["Mira", " mira ", ""], "story_position": 4},
            {"title": "fall", "year": 1204},
            {"title": "  ", "year": 1},
            {"title": "Rise", "year": -30, "era": "First Age"}]}"#;
        let events = parse_events(reply).unwrap().events;
        let summary: Vec<_> = events.iter().map(|e| (e.title.as_str(), e.year, e.story_position)).collect();
        assert_eq!(summary, [("Fall", 1204, 4), ("Rise", -30, 4)]);
        assert_eq!(events[0].entities, ["Mira"]);
        assert_eq!(events[1].era, "First Age");
    }

    #[test]
    fn suggestions_keep_the_first_three_distinct() {
        let reply = r#"["One.", "one.", " Two. ", "Three.", "Four."]"#;
        assert_eq!(parse_suggestions(reply).unwrap().suggestions, ["One.", "Two.", "Three."]);
    }

    #[test]
    fn descriptions_are_trimmed_and_capped() {
        assert_eq!(parse_description("  A quiet world.\n").unwrap(), "A quiet world.");
        assert_eq!(parse_description(&"w".repeat(MAX_TEXT_CHARS + 1)).unwrap().len(), MAX_TEXT_CHARS);
        assert_eq!(parse_description(" \n\t "), Err(OutputError::Empty));
        assert_eq!(
            parse_summary(&"w".repeat(MAX_TEXT_CHARS)).unwrap().len(),
            MAX_SUMMARY_CHARS,
            "a summary fits a story"
        );
    }

    #[test]
    fn bad_replies_are_rejected_with_a_reason() {
        type Parser = fn(&str) -> Result<(), OutputError>;
        let analysis: Parser = |reply| parse_analysis(reply).map(drop);
        let events: Parser = |reply| parse_events(reply).map(drop);
        let suggestions: Parser = |reply| parse_suggestions(reply).map(drop);
        let cases: [(Parser, &str, &str, &str); 12] = [
            (analysis, "", "is empty", "an empty reply"),
            (analysis, "```json\n```", "is empty", "empty fences"),
            (analysis, "I found Mira and Tomas.", "no JSON object", "prose only"),
            (analysis, r#"{"entities": [{"name": "Mira""#, "not valid JSON", "cut off"),
            (analysis, "{}", "`entities` and `locations`", "neither list"),
            (analysis, r#"{"entities": "Mira"}"#, "expected JSON shape", "a list that is a string"),
            (events, r#"{"event": []}"#, "missing field `events`", "the wrong key"),
            (events, r#"{"events": [{"title": "Fall"}]}"#, "event 1 (\"Fall\") needs", "no year"),
            (events, r#"{"events": [{"title": "Fall", "year": "soon"}]}"#, "needs a whole-number", "a word year"),
            (suggestions, r#"{"suggestions": ["a", "b"]}"#, "got 2", "too few"),
            (suggestions, r#"{"suggestions": ["a", "A", " a ", ""]}"#, "got 1", "duplicates and blanks"),
            (suggestions, r#"{"suggestions": "a, b, c"}"#, "expected JSON shape", "a string, not a list"),
        ];
        for (parse, reply, expected, reason) in cases {
            let error = parse(reply).expect_err(reason);
            assert!(error.to_string().contains(expected), "{reason}: {error}");
        }
    }

    #[test]
    fn messages_for_the_owner_never_quote_the_reply() {
        type Parser = fn(&str) -> Result<(), OutputError>;
        let analysis: Parser = |reply| parse_analysis(reply).map(drop);
        let events: Parser = |reply| parse_events(reply).map(drop);
        let suggestions: Parser = |reply| parse_suggestions(reply).map(drop);
        let cases: [(Parser, &str, &str); 6] = [
            (analysis, r#"{"entities": "Secret Mira"}"#, "the reply is not a JSON object with `entities`"),
            (analysis, r#"{"entities": [{"name": "Secret"#, "not valid JSON (line 1, column "),
            (analysis, "Secret words, no JSON.", "the reply holds no JSON object"),
            (events, r#"{"events": [{"title": "Secret Fall"}]}"#, "event 1 needs a whole-number `year`"),
            (events, r#"{"events": "Secret"}"#, "the reply is not a JSON object with an `events` list"),
            (suggestions, r#"{"suggestions": ["Secret", "secret"]}"#, "got 1"),
        ];
        for (parse, reply, expected) in cases {
            let error = parse(reply).expect_err(reply);
            let message = error.for_owner();
            assert!(message.contains(expected), "{reply}: {message}");
            assert!(!message.to_lowercase().contains("secret"), "{reply}: the message quotes it: {message}");
        }
        let detail = parse_events(r#"{"events": [{"title": "Secret Fall"}]}"#).expect_err("no year").to_string();
        assert!(detail.contains("Secret Fall"), "the model is told which event: {detail}");
    }
}
