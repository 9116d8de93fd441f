//! The offline provider: writes deterministic text locally, with no key and no network, so the
//! whole stack runs on a laptop. Its model is named `offline` and everything it writes is marked
//! `[offline]`. It reads only the request's [`Purpose`] and its source text (the last user message,
//! see [`crate::llm`]) and writes valid output for every purpose:
//!
//! - descriptions: a labelled summary built from the source's first sentences and names;
//! - analysis: capitalised names as characters, names after `in`/`at`/`to`/`from`… as locations;
//! - events: each sentence holding a 3–4 digit year, or else the first sentences in order, with
//!   eras taken from phrases like `Age of Embers` or `Third Age`;
//! - paraphrase: three distinct rewordings in the requested mode.
//!
//! The answer is streamed in several deltas; by default nothing sleeps, but a delay per delta can be
//! set to make jobs slow enough to watch or cancel.

use std::time::Duration;

use serde_json::json;

use super::{ChatRequest, Completion, LanguageModel, LlmError, Purpose};

/// The model name reported for offline results.
pub const OFFLINE_MODEL: &str = "offline";
/// The marker that starts every offline text.
pub const OFFLINE_MARKER: &str = "[offline]";

/// Words per streamed delta.
const WORDS_PER_DELTA: usize = 6;
/// Events taken from a text that has no years.
const MAX_UNDATED_EVENTS: usize = 10;
/// At most this many characters of the source are quoted in a description.
const MAX_QUOTED_CHARS: usize = 400;
const MAX_ITEMS: usize = 50;
const DEFAULT_ERA: &str = "Unnamed Era";

/// Capitalised words that start sentences but are not names, separated by spaces.
const STOP_WORDS: &str = "a after all also an and as at before but by day each even every for from he her here his \
    how i if in it its later meanwhile my next night no now of on once one our she so some soon still that the their \
    then there these they this those though to too until we what when where while who why with yes yet you your";

/// Words after which a name is a place.
const PLACE_PREPOSITIONS: &[&str] =
    &["in", "at", "to", "from", "into", "near", "through", "toward", "towards", "across", "inside", "beyond"];

/// The offline model. Cheap to build and to clone; holds only its pacing.
#[derive(Debug, Clone, Default)]
pub struct Offline {
    delta_delay: Duration,
}

impl Offline {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits `delay` before each delta, for demonstrations and cancellation tests.
    pub fn with_delta_delay(delay: Duration) -> Self {
        Self { delta_delay: delay }
    }

    /// The whole answer for a request, as [`LanguageModel::complete`] streams it.
    pub fn answer(request: &ChatRequest) -> String {
        let source = request.source_text();
        match &request.purpose {
            Purpose::DescribeWorld => describe_world(source),
            Purpose::DescribeStory => describe("story", source),
            Purpose::AnalyzeStory => analyze(source),
            Purpose::ExtractEvents => extract_events(source),
            Purpose::Paraphrase { mode } => paraphrase(source, mode),
        }
    }
}

#[async_trait::async_trait]
impl LanguageModel for Offline {
    fn model(&self) -> &str {
        OFFLINE_MODEL
    }

    async fn complete(
        &self,
        request: &ChatRequest,
        on_delta: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Completion, LlmError> {
        let text = Self::answer(request);
        for delta in deltas(&text) {
            if self.delta_delay.is_zero() {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(self.delta_delay).await;
            }
            on_delta(delta);
        }
        Ok(Completion { text, model: OFFLINE_MODEL.to_owned() })
    }
}

/// Splits text into pieces of a few words that concatenate back to it.
fn deltas(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (count, (index, _)) in text.match_indices(' ').enumerate() {
        if (count + 1) % WORDS_PER_DELTA == 0 {
            pieces.push(&text[start..=index]);
            start = index + 1;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

/// The first words of every description the offline model writes.
fn preface(subject: &str) -> String {
    format!(
        "{OFFLINE_MARKER} This {subject} description was written by Fabula's offline model; no language model was used.\n\n"
    )
}

/// A world's description from the facts gpt-worker gives about it, one a line:
/// `World: name — description`, `Character or thing: name [type] — …`, `Place: name — …`,
/// `Event: …`.
fn describe_world(source: &str) -> String {
    let facts = |kind: &'static str| source.lines().filter_map(move |line| line.strip_prefix(kind));
    let name_of = |fact: &str| {
        fact.split(" — ").next().unwrap_or_default().split(" [").next().unwrap_or_default().trim().to_owned()
    };
    let mut text = preface("world");
    let world = facts("World: ").next().unwrap_or_default();
    match world.split_once(" — ") {
        Some((name, said)) => text.push_str(&format!("{}: {}", name.trim(), said.trim())),
        None if world.trim().is_empty() => text.push_str("This world has no name yet."),
        None => text.push_str(&format!("{} has no description yet.", world.trim())),
    }
    let characters: Vec<String> = facts("Character or thing: ").map(name_of).collect();
    if !characters.is_empty() {
        text.push_str(&format!(" Its characters and things include {}.", list(&characters)));
    }
    let places: Vec<String> = facts("Place: ").map(name_of).collect();
    if !places.is_empty() {
        text.push_str(&format!(" Its places include {}.", list(&places)));
    }
    match facts("Event: ").count() {
        0 => {}
        1 => text.push_str(" Its timeline holds one event."),
        n => text.push_str(&format!(" Its timeline holds {n} events.")),
    }
    text
}

fn describe(subject: &str, source: &str) -> String {
    let names = Names::find(source);
    let sentences = sentences(source);
    let mut text = preface(subject);
    if sentences.is_empty() {
        text.push_str(&format!("There is no text to describe yet, so this {subject} is still a blank page."));
        return text;
    }
    let opening = clip_chars(&sentences.iter().take(2).copied().collect::<Vec<_>>().join(" "), MAX_QUOTED_CHARS);
    text.push_str(&format!("It opens: \"{opening}\""));
    if !names.characters.is_empty() {
        text.push_str(&format!(" It features {}.", list(&names.characters)));
    }
    if !names.places.is_empty() {
        text.push_str(&format!(" Places named include {}.", list(&names.places)));
    }
    let words = source.split_whitespace().count();
    text.push_str(&format!(" It runs to {words} words in {} sentences.", sentences.len()));
    text
}

fn analyze(source: &str) -> String {
    let names = Names::find(source);
    let sentences = sentences(source);
    let described = |name: &String| {
        let seen = sentences.iter().find(|s| s.contains(name.as_str())).copied().unwrap_or_default();
        format!("{OFFLINE_MARKER} Named in the story: \"{}\"", clip_chars(seen, 200))
    };
    let entities: Vec<_> = names
        .characters
        .iter()
        .map(|name| json!({"name": name, "entity_type": "character", "description": described(name)}))
        .collect();
    let locations: Vec<_> =
        names.places.iter().map(|name| json!({"name": name, "description": described(name)})).collect();
    json!({"entities": entities, "locations": locations}).to_string()
}

fn extract_events(source: &str) -> String {
    let names = Names::find(source);
    let sentences = sentences(source);
    let dated: Vec<_> = sentences.iter().filter_map(|s| year_in(s).map(|year| (*s, year))).collect();
    let picked = if dated.is_empty() {
        sentences.iter().take(MAX_UNDATED_EVENTS).zip(1..).map(|(s, position)| (*s, position)).collect()
    } else {
        dated
    };
    let mut era = DEFAULT_ERA.to_owned();
    let events: Vec<_> = picked
        .into_iter()
        .take(MAX_ITEMS)
        .zip(1..)
        .map(|((sentence, year), position)| {
            era = era_in(sentence).unwrap_or(era.clone());
            json!({
                "title": title_of(sentence),
                "description": format!("{OFFLINE_MARKER} {sentence}"),
                "year": year,
                "era": era,
                "entities": names.characters.iter().filter(|n| sentence.contains(n.as_str())).collect::<Vec<_>>(),
                "locations": names.places.iter().filter(|n| sentence.contains(n.as_str())).collect::<Vec<_>>(),
                "story_position": position,
            })
        })
        .collect();
    json!({ "events": events }).to_string()
}

fn paraphrase(source: &str, mode: &str) -> String {
    let text = source.split_whitespace().collect::<Vec<_>>().join(" ");
    let leads = lead_ins(mode);
    let reversed = {
        let mut sentences = sentences(&text);
        sentences.reverse();
        sentences.join(" ")
    };
    let bodies = [swap_words(&text), text.clone(), reversed];
    let suggestions: Vec<String> = leads
        .iter()
        .zip(bodies)
        .map(|(lead, body)| format!("{OFFLINE_MARKER} {lead} {body}").trim_end().to_owned())
        .collect();
    json!({ "suggestions": suggestions }).to_string()
}

/// Three distinct openings for a paraphrase mode.
fn lead_ins(mode: &str) -> [&'static str; 3] {
    match mode.trim().to_lowercase().as_str() {
        "formal" => ["It may be stated that:", "In formal terms:", "Expressed formally:"],
        "simpler" | "simple" => ["Simply put:", "In short:", "Plainly:"],
        "vivid" => ["Picture this:", "In vivid strokes:", "Imagine it:"],
        _ => ["In other words:", "Put another way:", "Said differently:"],
    }
}

/// A few common words replaced by others.
fn swap_words(text: &str) -> String {
    const SWAPS: &[(&str, &str)] = &[
        ("said", "remarked"),
        ("big", "large"),
        ("small", "little"),
        ("quickly", "swiftly"),
        ("very", "truly"),
        ("walked", "strode"),
        ("looked", "gazed"),
        ("began", "started"),
        ("old", "ancient"),
        ("dark", "shadowy"),
    ];
    let swap = |word: &str| {
        let bare = word.trim_end_matches(|c: char| c.is_ascii_punctuation());
        match SWAPS.iter().find(|(from, _)| *from == bare) {
            Some((_, to)) => format!("{to}{}", &word[bare.len()..]),
            None => word.to_owned(),
        }
    };
    text.split(' ').map(swap).collect::<Vec<_>>().join(" ")
}

/// The names of a text, in order of first appearance, deduplicated case-insensitively.
#[derive(Debug, Default)]
struct Names {
    characters: Vec<String>,
    places: Vec<String>,
}

impl Names {
    fn find(text: &str) -> Self {
        let mut names = Self::default();
        for sentence in sentences(text) {
            for (name, is_place) in names_in(sentence).into_iter().filter(|(name, _)| !is_era(name)) {
                names.add(name, is_place);
            }
        }
        names.characters.retain(|c| !names.places.iter().any(|p| p.eq_ignore_ascii_case(c)));
        names.characters.truncate(MAX_ITEMS);
        names.places.truncate(MAX_ITEMS);
        names
    }

    fn add(&mut self, name: String, is_place: bool) {
        let list = if is_place { &mut self.places } else { &mut self.characters };
        if !list.iter().any(|known| known.eq_ignore_ascii_case(&name)) {
            list.push(name);
        }
    }
}

/// The runs of capitalised words of one sentence (`of` may join two: `Lord of Storms`), each with
/// whether a place preposition precedes it (`to the Silver Lake` counts).
fn names_in(sentence: &str) -> Vec<(String, bool)> {
    let words: Vec<&str> = sentence.split_whitespace().collect();
    let mut found = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    let mut run_start = 0;
    for (index, raw) in words.iter().enumerate() {
        let word = bare_word(raw);
        let joins = is_name_word(word) || (word == "of" && !run.is_empty() && next_is_name(&words, index));
        if joins {
            if run.is_empty() {
                run_start = index;
            }
            run.push(word);
        }
        let is_last = index + 1 == words.len();
        if (!joins || is_last || raw.ends_with(|c: char| c.is_ascii_punctuation())) && !run.is_empty() {
            found.push((run.join(" "), follows_place_preposition(&words, run_start)));
            run.clear();
        }
    }
    found
}

fn next_is_name(words: &[&str], index: usize) -> bool {
    words.get(index + 1).is_some_and(|next| is_name_word(bare_word(next)))
}

/// A word with its surrounding punctuation and any possessive `'s` removed.
fn bare_word(raw: &str) -> &str {
    let word = raw.trim_matches(|c: char| !c.is_alphanumeric());
    word.strip_suffix("'s").or_else(|| word.strip_suffix("’s")).unwrap_or(word)
}

fn is_name_word(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_uppercase)
        && word.chars().count() > 1
        && !STOP_WORDS.split_whitespace().any(|stop| stop.eq_ignore_ascii_case(word))
}

fn follows_place_preposition(words: &[&str], start: usize) -> bool {
    let before = |back: usize| start.checked_sub(back).map(|i| bare_word(words[i]).to_lowercase());
    let is_preposition = |word: Option<String>| word.is_some_and(|w| PLACE_PREPOSITIONS.contains(&w.as_str()));
    match before(1).as_deref() {
        Some("the") => is_preposition(before(2)),
        _ => is_preposition(before(1)),
    }
}

/// The sentences of a text, trimmed; a sentence ends at `.`, `!` or `?` before a space, or at a
/// line break.
fn sentences(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    for line in text.lines() {
        let mut start = 0;
        let mut chars = line.char_indices().peekable();
        while let Some((index, c)) = chars.next() {
            let at_end = chars.peek().is_none_or(|(_, next)| next.is_whitespace());
            if matches!(c, '.' | '!' | '?') && at_end {
                found.push(line[start..index + c.len_utf8()].trim());
                start = index + c.len_utf8();
            }
        }
        found.push(line[start..].trim());
    }
    found.retain(|s| !s.is_empty());
    found
}

/// The first 3–4 digit number of a sentence, as a year.
fn year_in(sentence: &str) -> Option<i64> {
    sentence
        .split_whitespace()
        .map(|word| word.trim_matches(|c: char| !c.is_ascii_digit()))
        .find(|digits| (3..=4).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()))
        .and_then(|digits| digits.parse().ok())
}

/// Whether a name is an era's, such as `Age of Embers`.
fn is_era(name: &str) -> bool {
    name.split(' ').any(|word| matches!(word, "Age" | "Era"))
}

/// An era named in a sentence: `Age of Embers`, `Era of Kings` or `Third Age`.
fn era_in(sentence: &str) -> Option<String> {
    let words: Vec<&str> = sentence.split_whitespace().map(bare_word).collect();
    for (index, word) in words.iter().enumerate() {
        if !matches!(*word, "Age" | "Era") {
            continue;
        }
        if words.get(index + 1) == Some(&"of") && words.get(index + 2).is_some_and(|w| is_name_word(w)) {
            return Some(format!("{word} of {}", words[index + 2]));
        }
        if let Some(before) = index.checked_sub(1).map(|i| words[i]).filter(|w| is_name_word(w)) {
            return Some(format!("{before} {word}"));
        }
    }
    None
}

/// The first words of a sentence, as an event title.
fn title_of(sentence: &str) -> String {
    let words: Vec<&str> = sentence.split_whitespace().take(8).collect();
    clip_chars(words.join(" ").trim_end_matches(|c: char| c.is_ascii_punctuation()), 200)
}

/// `A`, `A and B`, `A, B and C`.
fn list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn clip_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ChatMessage;
    use crate::outputs;

    const STORY: &str = "In 1204 Mira Vale sailed from Port Sorrow to the Silver Lake. She met Old Tomas there. \
        Then the Age of Embers began in 1210, and Tomas fled to Kestrel Keep! Mira stayed.";

    fn request(purpose: Purpose, source: &str) -> ChatRequest {
        ChatRequest {
            purpose,
            messages: vec![
                ChatMessage::system("instructions"),
                ChatMessage::user("ignored: not the last user message"),
                ChatMessage::assistant("ignored too"),
                ChatMessage::user(source),
            ],
            json: false,
            max_tokens: 400,
            temperature: 0.7,
        }
    }

    fn purposes() -> Vec<Purpose> {
        vec![
            Purpose::DescribeWorld,
            Purpose::DescribeStory,
            Purpose::AnalyzeStory,
            Purpose::ExtractEvents,
            Purpose::Paraphrase { mode: "formal".into() },
            Purpose::Paraphrase { mode: String::new() },
        ]
    }

    async fn complete(purpose: Purpose, source: &str) -> (Completion, Vec<String>) {
        let mut deltas = Vec::new();
        let completion = Offline::new()
            .complete(&request(purpose, source), &mut |delta: &str| deltas.push(delta.to_owned()))
            .await
            .unwrap();
        (completion, deltas)
    }

    #[tokio::test]
    async fn is_deterministic_streamed_and_labelled() {
        for purpose in purposes() {
            let (first, deltas) = complete(purpose.clone(), STORY).await;
            let (second, _) = complete(purpose.clone(), STORY).await;
            assert_eq!(first, second, "{purpose:?} is deterministic");
            assert_eq!(first.model, OFFLINE_MODEL);
            assert!(deltas.len() > 1, "{purpose:?} streams in several deltas");
            assert_eq!(deltas.concat(), first.text, "{purpose:?}: the deltas make the text");
            assert!(first.text.contains(OFFLINE_MARKER), "{purpose:?} is labelled: {}", first.text);
        }
    }

    #[tokio::test]
    async fn writes_valid_output_for_every_purpose_even_from_nothing() {
        for source in [STORY, "", "   ", "no capitals, no years, nothing at all"] {
            for purpose in purposes() {
                let (completion, _) = complete(purpose.clone(), source).await;
                let text = &completion.text;
                let valid = match &purpose {
                    Purpose::DescribeWorld | Purpose::DescribeStory => {
                        outputs::parse_description(text).map(|d| assert!(d.starts_with(OFFLINE_MARKER)))
                    }
                    Purpose::AnalyzeStory => outputs::parse_analysis(text).map(drop),
                    Purpose::ExtractEvents => outputs::parse_events(text).map(drop),
                    Purpose::Paraphrase { .. } => outputs::parse_suggestions(text).map(drop),
                };
                assert!(valid.is_ok(), "{purpose:?} from {source:?}: {valid:?} in {text}");
            }
        }
    }

    #[tokio::test]
    async fn analysis_finds_characters_and_places() {
        let (completion, _) = complete(Purpose::AnalyzeStory, STORY).await;
        let analysis = outputs::parse_analysis(&completion.text).unwrap();
        let entities: Vec<_> = analysis.entities.iter().map(|e| e.name.as_str()).collect();
        let locations: Vec<_> = analysis.locations.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(entities, ["Mira Vale", "Old Tomas", "Tomas", "Mira"]);
        assert_eq!(locations, ["Port Sorrow", "Silver Lake", "Kestrel Keep"]);
        assert!(analysis.entities.iter().all(|e| e.entity_type == "character"));
        assert!(analysis.entities[0].description.contains("Mira Vale sailed"));
    }

    #[tokio::test]
    async fn a_world_is_described_from_its_facts() {
        let facts = "World: Eldoria — A land of rivers and salt.\nCharacter or thing: Mira Vale [character] — A ferrywoman.\n\
            Character or thing: The Lantern [item]\nPlace: Port Sorrow — A harbour.\nEvent: year 1204 (Age of Salt) Mira sails";
        let (completion, _) = complete(Purpose::DescribeWorld, facts).await;
        let expected = "Eldoria: A land of rivers and salt. Its characters and things include Mira Vale and The Lantern. \
            Its places include Port Sorrow. Its timeline holds one event.";
        assert_eq!(completion.text, preface("world") + expected);
        let (bare, _) = complete(Purpose::DescribeWorld, "World: Nowhere").await;
        assert!(bare.text.ends_with("\n\nNowhere has no description yet."), "{}", bare.text);
    }

    #[tokio::test]
    async fn events_take_years_and_eras() {
        let (completion, _) = complete(Purpose::ExtractEvents, STORY).await;
        let events = outputs::parse_events(&completion.text).unwrap().events;
        let summary: Vec<_> = events.iter().map(|e| (e.year, e.era.as_str(), e.story_position)).collect();
        assert_eq!(summary, [(1204, DEFAULT_ERA, 1), (1210, "Age of Embers", 2)]);
        assert_eq!(events[0].title, "In 1204 Mira Vale sailed from Port Sorrow");
        assert_eq!(events[0].locations, ["Port Sorrow", "Silver Lake"]);
        assert_eq!(events[1].locations, ["Kestrel Keep"]);
    }

    #[tokio::test]
    async fn undated_sentences_become_events_in_order() {
        let (completion, _) = complete(Purpose::ExtractEvents, "Ana woke. The Third Age ended. Ana slept.").await;
        let events = outputs::parse_events(&completion.text).unwrap().events;
        let summary: Vec<_> = events.iter().map(|e| (e.year, e.era.as_str())).collect();
        assert_eq!(summary, [(1, DEFAULT_ERA), (2, "Third Age"), (3, "Third Age")]);
    }

    #[tokio::test]
    async fn paraphrase_modes_give_three_distinct_rewordings() {
        let text = "The old man said hello.";
        let (formal, _) = complete(Purpose::Paraphrase { mode: "formal".into() }, text).await;
        let (vivid, _) = complete(Purpose::Paraphrase { mode: "vivid".into() }, text).await;
        let formal = outputs::parse_suggestions(&formal.text).unwrap().suggestions;
        let vivid = outputs::parse_suggestions(&vivid.text).unwrap().suggestions;
        assert_ne!(formal, vivid);
        assert_eq!(formal[0], "[offline] It may be stated that: The ancient man remarked hello.");
    }

    #[test]
    fn deltas_concatenate_to_the_text() {
        for text in ["", "one", "a b c d e f g h i j k l m", "ends with space "] {
            assert_eq!(deltas(text).concat(), text);
        }
    }
}
