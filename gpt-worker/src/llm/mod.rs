//! The language-model layer: one provider trait ([`LanguageModel`]), the request it takes, the
//! errors it returns, and its two implementations: [`openai::OpenAi`], which speaks the OpenAI Chat
//! Completions API (OpenAI, vLLM, llama.cpp, Ollama), and [`offline::Offline`], which writes
//! deterministic, clearly labelled text locally so the stack runs with no key and no network.
//!
//! # The prompt convention
//! Instructions, the expected output format and world context go in the system message and any
//! earlier messages; the **last user message carries only the source text** (the story, the world's
//! material, or the text to paraphrase). The real model reads everything; the offline model reads
//! only that last user message and the request's [`Purpose`]. (A repair turn appended after the
//! model's answer becomes the last user message; the offline model's output always parses, so it
//! never gets one.)

pub mod offline;
pub mod openai;
mod sse;

use std::fmt;
use std::time::Duration;

/// What a request is for. The real provider ignores it; the offline provider uses it to write
/// output of the right shape (see [`crate::outputs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// Plain text: a description of a world.
    DescribeWorld,
    /// Plain text: a description of a story.
    DescribeStory,
    /// JSON [`crate::outputs::Analysis`]: the characters, other entities and locations of a story.
    AnalyzeStory,
    /// JSON [`crate::outputs::ExtractedEvents`]: timeline events.
    ExtractEvents,
    /// JSON [`crate::outputs::Suggestions`]: three rewordings in the given mode (empty for neutral).
    Paraphrase { mode: String },
}

/// Who wrote a message of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

impl ChatRole {
    /// The role's name in the Chat Completions API.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatRole::System => "system",
            ChatRole::User => "user",
            ChatRole::Assistant => "assistant",
        }
    }
}

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self { role: ChatRole::System, content: content.into() }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self { role: ChatRole::User, content: content.into() }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self { role: ChatRole::Assistant, content: content.into() }
    }
}

/// One call to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub purpose: Purpose,
    /// The conversation; see the module docs for what the last user message must hold.
    pub messages: Vec<ChatMessage>,
    /// Ask for a single JSON object (`response_format: json_object`).
    pub json: bool,
    pub max_tokens: u32,
    pub temperature: f32,
}

impl ChatRequest {
    /// The source text: the content of the last user message, or "" when there is none.
    pub fn source_text(&self) -> &str {
        self.messages.iter().rev().find(|m| m.role == ChatRole::User).map_or("", |m| m.content.as_str())
    }
}

/// What the model wrote, in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub text: String,
    /// The model that wrote it, as the provider named it; `offline` for the offline provider.
    pub model: String,
}

/// Why a call failed. Messages are written by this crate only: they never hold the API key nor
/// the provider's raw response, so they are safe to show to the job's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlmError {
    /// Worth retrying later: rate limited (429), a server error (5xx), a connection that failed or
    /// timed out, a stream cut short. `retry_after` is the provider's own hint, when it gave one.
    Transient { message: String, retry_after: Option<Duration> },
    /// Retrying the same request will not help: refused (other 4xx), or an invalid response.
    Permanent { message: String },
}

impl LlmError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient { message: message.into(), retry_after: None }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent { message: message.into() }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

impl fmt::Display for LlmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transient { message, retry_after: Some(after) } => {
                write!(f, "the model is unavailable for now: {message} (retry after {}s)", after.as_secs())
            }
            Self::Transient { message, retry_after: None } => write!(f, "the model is unavailable for now: {message}"),
            Self::Permanent { message } => write!(f, "the model request failed: {message}"),
        }
    }
}

impl std::error::Error for LlmError {}

/// A language model that streams its answer.
///
/// Cancellation is by dropping the future returned by [`LanguageModel::complete`]: implementations
/// spawn nothing that outlives it, so dropping it aborts the in-flight request.
///
/// `on_delta` spells out its `for<'t>` because `async_trait` would otherwise tie the elided
/// lifetime of `&str` to the call; implementations write it the same way, and callers pass any
/// closure such as `&mut |delta: &str| output.push_str(delta)`.
#[async_trait::async_trait]
pub trait LanguageModel: Send + Sync {
    /// The configured model's name (`offline` for the offline provider).
    fn model(&self) -> &str;

    /// Runs the request to completion, calling `on_delta` with each piece of text as it arrives;
    /// the returned [`Completion::text`] is the concatenation of those pieces.
    async fn complete(
        &self,
        request: &ChatRequest,
        on_delta: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Completion, LlmError>;
}

/// Where an API key goes when no base URL is given: OpenAI's own API.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// The server the settings name: `LLM_BASE_URL` (with or without a key: local servers
/// such as Ollama need none), OpenAI's API when only a key is set, or `None` for the
/// offline model when neither is.
fn server_url(settings: &crate::config::LlmSettings) -> Option<String> {
    let set = |value: Option<&str>| value.is_some_and(|v| !v.trim().is_empty());
    match (&settings.base_url, set(settings.api_key.as_ref().map(|k| k.expose()))) {
        (Some(url), _) if set(Some(url)) => Some(url.clone()),
        (_, true) => Some(OPENAI_BASE_URL.to_owned()),
        _ => None,
    }
}

/// The model the settings name: an OpenAI-compatible server (see [`server_url`]), or
/// the offline model when neither a base URL nor a key is set.
pub fn from_settings(settings: &crate::config::LlmSettings) -> Result<std::sync::Arc<dyn LanguageModel>, String> {
    let Some(base_url) = server_url(settings) else {
        tracing::info!("no LLM_BASE_URL or LLM_API_KEY: using the offline model");
        return Ok(std::sync::Arc::new(offline::Offline::with_delta_delay(settings.offline_pace)));
    };
    let client = openai::OpenAi::new(openai::OpenAiSettings {
        base_url,
        api_key: settings.api_key.clone(),
        model: settings.model.clone(),
        connect_timeout: settings.connect_timeout,
        request_timeout: settings.request_timeout,
        idle_timeout: settings.idle_timeout,
    })
    .map_err(|e| e.to_string())?;
    Ok(std::sync::Arc::new(client))
}

#[cfg(test)]
mod tests {
    use fabula_runtime::config::Secret;

    use super::*;

    #[test]
    fn the_offline_model_runs_only_when_neither_a_base_url_nor_a_key_is_set() {
        let local = "http://127.0.0.1:11434/v1";
        #[rustfmt::skip]
        let cases = [
            (None, None, None, "nothing set"),
            (Some(" "), Some(""), None, "blank values"),
            (Some(local), None, Some(local), "a local server needs no key"),
            (Some(local), Some("sk-test"), Some(local), "a base URL and a key"),
            (None, Some("sk-test"), Some(OPENAI_BASE_URL), "a key alone means OpenAI"),
        ];
        for (base_url, api_key, expected, why) in cases {
            let mut settings = crate::config::Settings::for_tests(
                "sqlite::memory:",
                "http://127.0.0.1:1",
                std::path::Path::new("data"),
            )
            .llm;
            settings.base_url = base_url.map(Into::into);
            settings.api_key = api_key.map(Secret::new);
            assert_eq!(server_url(&settings).as_deref(), expected, "{why}");
        }
    }
}
