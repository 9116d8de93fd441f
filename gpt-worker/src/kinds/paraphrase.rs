//! Paraphrase: three rewordings of a text. Nothing is written anywhere.

use fabula_contracts::pb::jobs::{Paraphrase, SuggestionsResult, job_result::Kind};

use super::{JobContext, KindError, Step, ask};
use crate::{
    llm::{ChatMessage, ChatRequest, ChatRole, Purpose},
    outputs::parse_suggestions,
};

pub async fn run(ctx: &JobContext<'_>, spec: &Paraphrase) -> Result<Kind, KindError> {
    ctx.recorder.writing(10, 95, "asking the model for three rewordings");
    let style = if spec.mode.trim().is_empty() { "neutral".to_owned() } else { spec.mode.trim().to_owned() };
    let request = ChatRequest {
        purpose: Purpose::Paraphrase { mode: style.clone() },
        messages: vec![
            ChatMessage {
                role: ChatRole::System,
                content: format!(
                    "You help a fiction writer reword a passage. Keep its meaning, names and facts; \
                     change the wording in a {style} style. Reply with JSON only: \
                     {{\"suggestions\": [\"…\", \"…\", \"…\"]}} holding exactly three different rewordings."
                ),
            },
            ChatMessage { role: ChatRole::User, content: spec.text.clone() },
        ],
        json: true,
        max_tokens: 2_000,
        temperature: 0.8,
    };
    let suggestions = ask(ctx, Step::Unsaved, request, parse_suggestions).await?;
    ctx.recorder.progress(100, "three rewordings ready");
    Ok(Kind::Suggestions(SuggestionsResult { suggestions: suggestions.suggestions }))
}
