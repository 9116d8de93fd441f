//! What lists and stats show of a story's text without reading it: its word count
//! and a short plain-text preview, computed once per write of the text (create,
//! update, restore) and stored beside it, and counted at start-up for stories
//! written before they were kept.

use fabula_contracts::pb::story::StoryFormat;
use fabula_store::db::Db;
use sqlx::Row;

/// The characters of a preview, before its "…".
pub const PREVIEW_CHARS: usize = 200;
/// The stories counted at start-up per transaction.
const BACKFILL_BATCH: i64 = 500;

/// The word count and preview of a story's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    pub word_count: i64,
    pub preview: String,
}

/// Measures `content` written in `format`: markdown marks are not words.
pub fn measure(content: &str, format: StoryFormat) -> Measured {
    let plain = match format {
        StoryFormat::Markdown => strip_markdown(content),
        _ => content.to_owned(),
    };
    let words: Vec<&str> = plain.split_whitespace().collect();
    let word_count = words.iter().filter(|word| word.chars().any(char::is_alphanumeric)).count();
    let folded = words.join(" ");
    let mut preview: String = folded.chars().take(PREVIEW_CHARS).collect();
    if preview.len() < folded.len() {
        preview.push('…');
    }
    Measured { word_count: i64::try_from(word_count).unwrap_or(i64::MAX), preview }
}

/// Markdown as the text a reader sees: no heading, quote or list marks, no fences,
/// emphasis or code marks, links and images as their text.
fn strip_markdown(content: &str) -> String {
    let mut plain = String::with_capacity(content.len());
    for line in content.lines() {
        let line = line.trim_start();
        if line.starts_with("```") || line.starts_with("~~~") {
            continue;
        }
        let line = line.trim_start_matches(['#', '>', ' ']);
        let line = ["- ", "* ", "+ "].iter().find_map(|mark| line.strip_prefix(mark)).unwrap_or(line);
        plain.push_str(&unlink(line));
        plain.push('\n');
    }
    plain.retain(|c| !matches!(c, '*' | '_' | '`' | '~'));
    plain
}

/// `[text](url)` and `![text](url)` as `text`.
fn unlink(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        let Some((text, after)) = rest[open + 1..].split_once("](") else { break };
        let Some(close) = after.find(')') else { break };
        out.push_str(rest[..open].strip_suffix('!').unwrap_or(&rest[..open]));
        out.push_str(text);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Counts the stories stored before word counts were kept, a batch per transaction,
/// so a large database is counted without one long lock.
pub async fn count_uncounted(db: &Db) -> Result<(), sqlx::Error> {
    loop {
        let mut tx = db.begin().await?;
        let rows = sqlx::query("SELECT id, content, format FROM stories WHERE word_count IS NULL LIMIT $1")
            .bind(BACKFILL_BATCH)
            .fetch_all(&mut *tx)
            .await?;
        for row in &rows {
            let format = StoryFormat::from_str_name(&row.try_get::<String, _>(2)?).unwrap_or(StoryFormat::Plain);
            let measured = measure(&row.try_get::<String, _>(1)?, format);
            sqlx::query("UPDATE stories SET word_count = $1, preview = $2 WHERE id = $3")
                .bind(measured.word_count)
                .bind(&measured.preview)
                .bind(row.try_get::<String, _>(0)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if (rows.len() as i64) < BACKFILL_BATCH {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_runs_with_a_letter_or_digit() {
        let cases = [
            ("", 0, "nothing"),
            ("  one\ttwo\n\nthree  ", 3, "any white space separates"),
            ("Well — then, 42 ... ok!", 4, "a lone dash or ellipsis is not a word"),
            ("l'été, naïve café", 3, "letters beyond ASCII"),
        ];
        for (text, words, why) in cases {
            assert_eq!(measure(text, StoryFormat::Plain).word_count, words, "{why}");
        }
    }

    #[test]
    fn markdown_marks_are_neither_words_nor_preview() {
        let text = "# The *Road*\n\n> - a [long](http://x.y/z) way\n```\n![map](m.png) **ends**";
        let measured = measure(text, StoryFormat::Markdown);
        assert_eq!(measured.preview, "The Road a long way map ends");
        assert_eq!(measured.word_count, 7);
        assert_eq!(measure("# Road", StoryFormat::Plain).word_count, 1, "plain text keeps its marks");
    }

    #[test]
    fn a_preview_is_200_characters_folded_then_an_ellipsis() {
        let long = "é ".repeat(150);
        let preview = measure(&long, StoryFormat::Plain).preview;
        assert_eq!(preview.chars().count(), PREVIEW_CHARS + 1);
        assert!(preview.ends_with('…') && !preview.contains("  "));
        assert_eq!(measure("short\n\ntext", StoryFormat::Plain).preview, "short text", "no ellipsis when it all fits");
    }

    #[tokio::test]
    async fn stories_stored_before_counts_were_kept_are_counted() {
        let world = crate::children::testing::world().await;
        let db = &world.state.db;
        let owner = world.owner.user_id().expect("a user").to_string();
        for (n, content) in (0..BACKFILL_BATCH + 2).map(|n| (n, format!("story number {n}"))) {
            sqlx::query(
                "INSERT INTO stories (id, world_id, owner_id, title, content, format, genre, visibility, \
                 sort_order, create_time, update_time) VALUES ($1, $2, $3, 'S', $4, 'PLAIN', '', 'DRAFT', $5, 0, 0)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(world.world_id.to_string())
            .bind(&owner)
            .bind(content)
            .bind(n + 1)
            .execute(&db.writer)
            .await
            .unwrap();
        }
        count_uncounted(db).await.unwrap();
        let counted: (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), SUM(word_count) FROM stories WHERE preview LIKE 'story number %'")
                .fetch_one(&db.writer)
                .await
                .unwrap();
        assert_eq!(counted, (BACKFILL_BATCH + 2, 3 * (BACKFILL_BATCH + 2)), "every batch, each story its words");
    }
}
