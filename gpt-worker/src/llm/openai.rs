//! The real provider: the OpenAI Chat Completions API over reqwest, streamed as Server-Sent
//! Events, so it works with OpenAI and every compatible server (vLLM, llama.cpp, Ollama).
//!
//! Failures are sorted into [`LlmError::Transient`] (429 with its `Retry-After`, 408, 5xx, connect
//! errors, timeouts, a stream cut short or an error event in it) and [`LlmError::Permanent`] (other
//! 4xx, and a response that is not what the API promises: malformed JSON in a chunk included, since
//! a server that sends it is incompatible and asking again would only spend money). Error messages
//! are written here: they carry the HTTP status and at most the provider's short error code, never
//! its body, nor the key.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use fabula_runtime::{config::Secret, telemetry::escaped};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode, Url};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::sse::{SseDecoder, SseError};
use super::{ChatRequest, Completion, LanguageModel, LlmError};

/// How much of an error response is read to find the provider's error code.
const MAX_ERROR_BODY_BYTES: usize = 16 * 1024;
/// The largest non-streamed answer accepted.
const MAX_JSON_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The longest provider error code quoted in a message.
const MAX_ERROR_CODE_CHARS: usize = 64;

/// Where and how to reach the model.
#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// The API root, such as `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// Sent as a bearer token; local servers usually need none.
    pub api_key: Option<Secret>,
    pub model: String,
    pub connect_timeout: Duration,
    /// The longest a whole call may take, from sending the request to the last chunk.
    pub request_timeout: Duration,
    /// The longest gap allowed between two chunks of the answer.
    pub idle_timeout: Duration,
}

/// The settings do not describe a usable client.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the model base URL {0:?} is not an http(s) URL")]
    InvalidBaseUrl(String),
    #[error("the HTTP client could not be built: {0}")]
    Client(#[source] reqwest::Error),
}

/// A client of one OpenAI-compatible server and model.
#[derive(Debug)]
pub struct OpenAi {
    client: reqwest::Client,
    endpoint: Url,
    api_key: Option<Secret>,
    model: String,
    request_timeout: Duration,
    idle_timeout: Duration,
}

impl OpenAi {
    pub fn new(settings: OpenAiSettings) -> Result<Self, SetupError> {
        let endpoint = chat_completions_url(&settings.base_url)?;
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .user_agent(concat!("fabula-gpt-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SetupError::Client)?;
        Ok(Self {
            client,
            endpoint,
            api_key: settings.api_key,
            model: settings.model,
            request_timeout: settings.request_timeout,
            idle_timeout: settings.idle_timeout,
        })
    }

    async fn call(
        &self,
        request: &ChatRequest,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Completion, LlmError> {
        let response = self.send(request).await?;
        if !response.status().is_success() {
            return Err(reject(response, self.idle_timeout).await);
        }
        let mut answer = PartialCompletion::new(&self.model);
        if is_json(response.headers()) {
            read_whole_answer(response, &mut answer, on_delta, self.idle_timeout).await?;
        } else {
            read_streamed_answer(response, &mut answer, on_delta, self.idle_timeout).await?;
        }
        Ok(answer.into_completion())
    }

    async fn send(&self, request: &ChatRequest) -> Result<Response, LlmError> {
        let mut builder = self.client.post(self.endpoint.clone()).json(&WireRequest::new(&self.model, request));
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key.expose());
        }
        builder.send().await.map_err(transport_error)
    }
}

#[async_trait::async_trait]
impl LanguageModel for OpenAi {
    fn model(&self) -> &str {
        &self.model
    }

    #[tracing::instrument(skip_all, fields(model = %self.model, purpose = ?request.purpose))]
    async fn complete(
        &self,
        request: &ChatRequest,
        on_delta: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Completion, LlmError> {
        let deadline = Instant::now() + self.request_timeout;
        match tokio::time::timeout_at(deadline, self.call(request, on_delta)).await {
            Ok(result) => result,
            Err(_) => Err(LlmError::transient(format!("no complete answer within {}", seconds(self.request_timeout)))),
        }
    }
}

/// `{base_url}/chat/completions`, checked once.
fn chat_completions_url(base_url: &str) -> Result<Url, SetupError> {
    let invalid = || SetupError::InvalidBaseUrl(base_url.to_owned());
    let url =
        Url::parse(&format!("{}/chat/completions", base_url.trim().trim_end_matches('/'))).map_err(|_| invalid())?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        _ => Err(invalid()),
    }
}

/// rustls needs a process-wide crypto provider; this crate builds it with `ring` (no C toolchain
/// beyond `cc`, unlike aws-lc-rs). A provider installed earlier by the process is kept.
fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

/// The request body of `POST /chat/completions`.
#[derive(Debug, Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    max_tokens: u32,
    temperature: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat>,
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Debug, Serialize)]
struct ResponseFormat {
    r#type: &'static str,
}

impl<'a> WireRequest<'a> {
    fn new(model: &'a str, request: &'a ChatRequest) -> Self {
        Self {
            model,
            messages: request
                .messages
                .iter()
                .map(|m| WireMessage { role: m.role.as_str(), content: &m.content })
                .collect(),
            stream: true,
            max_tokens: request.max_tokens,
            temperature: request.temperature,
            response_format: request.json.then_some(ResponseFormat { r#type: "json_object" }),
        }
    }
}

/// One `data:` event of the stream.
#[derive(Debug, Deserialize)]
struct StreamChunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<StreamChoice>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct StreamChoice {
    #[serde(default)]
    delta: Option<MessageContent>,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// A non-streamed answer, from a server that ignored `stream: true`.
#[derive(Debug, Deserialize)]
struct WholeAnswer {
    #[serde(default)]
    model: Option<String>,
    choices: Vec<WholeChoice>,
}

#[derive(Debug, Deserialize)]
struct WholeChoice {
    message: MessageContent,
}

#[derive(Debug, Deserialize)]
struct MessageContent {
    #[serde(default)]
    content: Option<String>,
}

/// The model's reply as it arrives, assembled into a [`Completion`].
#[derive(Debug)]
struct PartialCompletion {
    text: String,
    model: String,
    /// A choice reported why it stopped, so a stream that then ends without `[DONE]` is complete.
    finished: bool,
}

/// Whether the stream goes on after an event.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    More,
    Done,
}

impl PartialCompletion {
    fn new(model: &str) -> Self {
        Self { text: String::new(), model: model.to_owned(), finished: false }
    }

    fn append(&mut self, content: Option<String>, on_delta: &mut (dyn FnMut(&str) + Send)) {
        if let Some(content) = content.filter(|c| !c.is_empty()) {
            on_delta(&content);
            self.text.push_str(&content);
        }
    }

    fn note_model(&mut self, model: Option<String>) {
        if let Some(model) = model.filter(|m| !m.is_empty()) {
            self.model = model;
        }
    }

    /// Applies the data of one event.
    fn apply_event(&mut self, data: &str, on_delta: &mut (dyn FnMut(&str) + Send)) -> Result<Flow, LlmError> {
        if data.trim() == "[DONE]" {
            return Ok(Flow::Done);
        }
        let chunk: StreamChunk = serde_json::from_str(data)
            .map_err(|_| LlmError::permanent("the model provider sent a stream chunk that is not valid JSON"))?;
        if let Some(error) = chunk.error {
            return Err(LlmError::transient(format!("the model provider reported an error{}", code_suffix(&error))));
        }
        self.note_model(chunk.model);
        if let Some(choice) = chunk.choices.into_iter().next() {
            self.finished |= choice.finish_reason.is_some();
            self.append(choice.delta.and_then(|d| d.content), on_delta);
        }
        Ok(Flow::More)
    }

    fn into_completion(self) -> Completion {
        Completion { text: self.text, model: self.model }
    }
}

async fn read_streamed_answer(
    mut response: Response,
    answer: &mut PartialCompletion,
    on_delta: &mut (dyn FnMut(&str) + Send),
    idle_timeout: Duration,
) -> Result<(), LlmError> {
    let mut decoder = SseDecoder::default();
    while let Some(chunk) = next_chunk(&mut response, idle_timeout).await? {
        for data in decoder.push(chunk.as_ref()).map_err(invalid_stream)? {
            if answer.apply_event(&data, on_delta)? == Flow::Done {
                return Ok(());
            }
        }
    }
    if let Some(data) = decoder.finish().map_err(invalid_stream)?
        && answer.apply_event(&data, on_delta)? == Flow::Done
    {
        return Ok(());
    }
    if answer.finished {
        Ok(())
    } else {
        Err(LlmError::transient("the model's stream ended before the answer was complete"))
    }
}

async fn read_whole_answer(
    response: Response,
    answer: &mut PartialCompletion,
    on_delta: &mut (dyn FnMut(&str) + Send),
    idle_timeout: Duration,
) -> Result<(), LlmError> {
    let (body, complete) = read_body(response, MAX_JSON_BODY_BYTES, idle_timeout).await?;
    if !complete {
        return Err(LlmError::permanent("the model's answer is too large"));
    }
    let whole: WholeAnswer = serde_json::from_slice(&body)
        .map_err(|_| LlmError::permanent("the model provider sent an answer that is not valid JSON"))?;
    answer.note_model(whole.model);
    let content = whole.choices.into_iter().next().and_then(|choice| choice.message.content);
    answer.append(content, on_delta);
    Ok(())
}

/// The next piece of the body, or `None` at its end; waits at most `idle_timeout` for it.
async fn next_chunk(response: &mut Response, idle_timeout: Duration) -> Result<Option<impl AsRef<[u8]>>, LlmError> {
    match tokio::time::timeout(idle_timeout, response.chunk()).await {
        Ok(chunk) => chunk.map_err(transport_error),
        Err(_) => Err(LlmError::transient(format!("the model's stream stalled for {}", seconds(idle_timeout)))),
    }
}

/// Up to `limit` bytes of the body, and whether that was all of it.
async fn read_body(mut response: Response, limit: usize, idle_timeout: Duration) -> Result<(Vec<u8>, bool), LlmError> {
    let mut body = Vec::new();
    while let Some(chunk) = next_chunk(&mut response, idle_timeout).await? {
        body.extend_from_slice(chunk.as_ref());
        if body.len() > limit {
            return Ok((body, false));
        }
    }
    Ok((body, true))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("application/json"))
}

/// The error for a response that is not a success.
async fn reject(response: Response, idle_timeout: Duration) -> LlmError {
    let status = response.status();
    let retry_after = retry_after(response.headers(), SystemTime::now());
    let code = match read_body(response, MAX_ERROR_BODY_BYTES, idle_timeout).await {
        Ok((body, _)) => serde_json::from_slice::<serde_json::Value>(&body).map(|body| code_suffix(&body)).ok(),
        Err(_) => None,
    };
    tracing::warn!(status = status.as_u16(), ?retry_after, "the model provider refused the request");
    classify_status(status, retry_after, &code.unwrap_or_default())
}

fn classify_status(status: StatusCode, retry_after: Option<Duration>, code: &str) -> LlmError {
    let http = format!("HTTP {}{code}", status.as_u16());
    let transient = |what: &str| LlmError::Transient { message: format!("{what} ({http})"), retry_after };
    let permanent = |what: &str| LlmError::permanent(format!("{what} ({http})"));
    match status {
        StatusCode::TOO_MANY_REQUESTS => transient("rate limited by the model provider"),
        StatusCode::REQUEST_TIMEOUT => transient("the model provider timed out"),
        _ if status.is_server_error() => transient("the model provider had an internal error"),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => permanent("the model provider refused the credentials"),
        StatusCode::NOT_FOUND => permanent("the model or its endpoint was not found"),
        _ => permanent("the model provider rejected the request"),
    }
}

/// `, code` for the provider's `{"error": {"code" | "type": "..."}}`, when it is a short token;
/// "" otherwise. Nothing else of the provider's text is ever quoted.
fn code_suffix(body: &serde_json::Value) -> String {
    let error = body.get("error").unwrap_or(body);
    ["code", "type"]
        .iter()
        .filter_map(|key| error.get(key).and_then(serde_json::Value::as_str))
        .find(|code| is_safe_code(code))
        .map(|code| format!(", {code}"))
        .unwrap_or_default()
}

fn is_safe_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_ERROR_CODE_CHARS
        && code.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The provider's `Retry-After`: delay seconds or an HTTP date (a past date means now).
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The error for a request that never got a complete answer.
fn transport_error(error: reqwest::Error) -> LlmError {
    let error = error.without_url();
    tracing::warn!(error = %escaped(&error), cause = ?error.source(), "the model request failed in transport");
    if error.is_timeout() {
        LlmError::transient("the connection to the model provider timed out")
    } else if error.is_connect() {
        LlmError::transient("could not connect to the model provider")
    } else if error.is_builder() || error.is_redirect() {
        LlmError::permanent("the request to the model provider could not be sent")
    } else {
        LlmError::transient("the connection to the model provider broke")
    }
}

fn invalid_stream(error: SseError) -> LlmError {
    LlmError::permanent(match error {
        SseError::LineTooLong => "the model provider sent an event stream line that is too long",
        SseError::NotUtf8 => "the model provider sent an event stream that is not UTF-8",
    })
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers_with_retry_after(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").unwrap();
        let cases = [
            ("2", Some(Duration::from_secs(2)), "delay seconds"),
            (" 120 ", Some(Duration::from_secs(120)), "surrounding spaces"),
            ("Wed, 21 Oct 2026 07:28:30 GMT", Some(Duration::from_secs(30)), "a date 30s ahead"),
            ("Wed, 21 Oct 2026 07:27:00 GMT", Some(Duration::ZERO), "a date in the past"),
            ("soon", None, "neither seconds nor a date"),
            ("-5", None, "negative seconds"),
        ];
        for (value, expected, reason) in cases {
            assert_eq!(retry_after(&headers_with_retry_after(value), now), expected, "{reason}");
        }
        assert_eq!(retry_after(&HeaderMap::new(), now), None, "no header");
    }

    #[test]
    fn statuses_sort_into_transient_and_permanent() {
        let cases = [
            (429, true),
            (408, true),
            (500, true),
            (502, true),
            (503, true),
            (400, false),
            (401, false),
            (403, false),
            (404, false),
            (422, false),
        ];
        for (status, transient) in cases {
            let error = classify_status(StatusCode::from_u16(status).unwrap(), None, "");
            assert_eq!(error.is_transient(), transient, "HTTP {status}: {error}");
            assert!(error.to_string().contains(&format!("HTTP {status}")), "{error}");
        }
    }

    #[test]
    fn only_short_error_codes_are_quoted() {
        let cases = [
            (r#"{"error":{"code":"rate_limit_exceeded","message":"secret text"}}"#, ", rate_limit_exceeded"),
            (r#"{"error":{"code":null,"type":"invalid_request_error"}}"#, ", invalid_request_error"),
            (r#"{"error":{"code":"has spaces: sk-123","type":"x y"}}"#, ""),
            (r#"{"error":"plain text"}"#, ""),
            (r#"{"detail":"nothing"}"#, ""),
        ];
        for (body, expected) in cases {
            assert_eq!(code_suffix(&serde_json::from_str(body).unwrap()), expected, "{body}");
        }
    }

    #[test]
    fn base_urls_must_be_http() {
        let url = chat_completions_url("http://127.0.0.1:11434/v1/").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:11434/v1/chat/completions");
        assert!(chat_completions_url("ftp://example.com").is_err());
        assert!(chat_completions_url("not a url").is_err());
    }
}
