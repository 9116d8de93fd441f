//! The OpenAI-compatible provider against a fake server on loopback: streaming, the request it
//! sends, how each failure is classified, timeouts, and cancellation by dropping the call.

use std::time::{Duration, Instant, SystemTime};

use fabula_runtime::config::Secret;
use fabula_testkit::fake_model::{FakeOpenAi, Reply, content_chunk};
use gpt_worker::llm::openai::{OpenAi, OpenAiSettings};
use gpt_worker::llm::{ChatMessage, ChatRequest, Completion, LanguageModel, LlmError, Purpose};

const API_KEY: &str = "sk-test-do-not-leak";

fn settings(base_url: &str) -> OpenAiSettings {
    OpenAiSettings {
        base_url: base_url.to_owned(),
        api_key: Some(Secret::new(API_KEY)),
        model: "gpt-test".to_owned(),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(2),
    }
}

fn model(server: &FakeOpenAi) -> OpenAi {
    OpenAi::new(settings(&server.base_url)).expect("a client")
}

fn request(json: bool) -> ChatRequest {
    ChatRequest {
        purpose: Purpose::AnalyzeStory,
        messages: vec![ChatMessage::system("Find the characters."), ChatMessage::user("Mira sailed.")],
        json,
        max_tokens: 300,
        temperature: 0.2,
    }
}

/// Runs a request, returning its result and the deltas seen.
async fn complete(model: &OpenAi, request: &ChatRequest) -> (Result<Completion, LlmError>, Vec<String>) {
    let mut deltas = Vec::new();
    let result = model.complete(request, &mut |delta: &str| deltas.push(delta.to_owned())).await;
    (result, deltas)
}

async fn error_for(reply: Reply) -> LlmError {
    let server = FakeOpenAi::start(reply).await;
    let (result, _) = complete(&model(&server), &request(false)).await;
    result.expect_err("the call fails")
}

/// The error says nothing the provider wrote beyond a short code, and nothing secret.
fn assert_safe(error: &LlmError) {
    let message = error.to_string();
    for leak in [API_KEY, "upstream secret text", "Incorrect API key"] {
        assert!(!message.contains(leak), "{message:?} leaks {leak:?}");
    }
}

#[tokio::test]
async fn streams_deltas_in_order_and_sends_the_expected_request() {
    let mut server = FakeOpenAi::start(Reply::streaming(&["{\"enti", "ties\": [", "]}"])).await;
    let (result, deltas) = complete(&model(&server), &request(true)).await;

    let completion = result.expect("a completion");
    assert_eq!(deltas, ["{\"enti", "ties\": [", "]}"]);
    assert_eq!(completion.text, deltas.concat());
    assert_eq!(completion.model, "fake-model", "the model the server named");

    let sent = server.request().await;
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(sent.headers.get("authorization").map(String::as_str), Some("Bearer sk-test-do-not-leak"));
    assert_eq!(
        sent.body,
        serde_json::json!({
            "model": "gpt-test",
            "messages": [
                {"role": "system", "content": "Find the characters."},
                {"role": "user", "content": "Mira sailed."},
            ],
            "stream": true,
            "max_tokens": 300,
            "temperature": 0.2,
            "response_format": {"type": "json_object"},
        })
    );
}

#[tokio::test]
async fn text_requests_have_no_response_format_and_keyless_ones_no_authorization() {
    let mut server = FakeOpenAi::start(Reply::streaming(&["Hello"])).await;
    let keyless = OpenAi::new(OpenAiSettings { api_key: None, ..settings(&server.base_url) }).unwrap();
    let (result, _) = complete(&keyless, &request(false)).await;

    assert_eq!(result.unwrap().text, "Hello");
    let sent = server.request().await;
    assert!(sent.body.get("response_format").is_none(), "{}", sent.body);
    assert!(!sent.headers.contains_key("authorization"));
}

#[tokio::test]
async fn tolerates_comments_keepalives_events_split_across_reads_and_usage_chunks() {
    let event = format!("data: {}\n\n", content_chunk("world"));
    let (head, tail) = event.split_at(17);
    let reply = Reply::event_stream()
        .chunk(b": keep-alive\n\n")
        .event(&content_chunk("Hello, "))
        .chunk(head.as_bytes())
        .pause(Duration::from_millis(20))
        .chunk(tail.as_bytes())
        .chunk(b"\r\n: ping\r\n\r\n")
        .event(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#)
        .event(r#"{"choices":[],"usage":{"total_tokens":7}}"#)
        .done();
    let server = FakeOpenAi::start(reply).await;
    let (result, deltas) = complete(&model(&server), &request(false)).await;

    assert_eq!(result.unwrap().text, "Hello, world");
    assert_eq!(deltas, ["Hello, ", "world"]);
}

#[tokio::test]
async fn accepts_a_non_streamed_answer() {
    let body = r#"{"model":"plain","choices":[{"index":0,"message":{"role":"assistant","content":"Whole."}}]}"#;
    let server = FakeOpenAi::start(Reply::status(200, &[], body)).await;
    let (result, deltas) = complete(&model(&server), &request(false)).await;

    assert_eq!(result.unwrap(), Completion { text: "Whole.".into(), model: "plain".into() });
    assert_eq!(deltas, ["Whole."]);
}

#[tokio::test]
async fn a_stream_that_reports_why_it_stopped_needs_no_done() {
    let reply = Reply::event_stream()
        .event(&content_chunk("Done"))
        .event(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#)
        .end_body();
    let server = FakeOpenAi::start(reply).await;
    assert_eq!(complete(&model(&server), &request(false)).await.0.unwrap().text, "Done");
}

#[tokio::test]
async fn rate_limits_are_transient_with_the_retry_after_seconds() {
    let body = r#"{"error":{"message":"upstream secret text","type":"requests","code":"rate_limit_exceeded"}}"#;
    let error = error_for(Reply::status(429, &[("Retry-After", "2")], body)).await;

    let LlmError::Transient { message, retry_after } = &error else { panic!("{error:?}") };
    assert_eq!(*retry_after, Some(Duration::from_secs(2)));
    assert!(message.contains("429") && message.contains("rate_limit_exceeded"), "{message}");
    assert_safe(&error);
}

#[tokio::test]
async fn rate_limits_honour_a_retry_after_date() {
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
    let error = error_for(Reply::status(429, &[("retry-after", &date)], "{}")).await;

    let LlmError::Transient { retry_after: Some(after), .. } = error else { panic!("{error:?}") };
    assert!((Duration::from_secs(27)..=Duration::from_secs(30)).contains(&after), "{after:?}");
}

#[tokio::test]
async fn server_errors_are_transient() {
    for status in [500, 502, 503] {
        let error = error_for(Reply::status(status, &[], r#"{"error":{"message":"upstream secret text"}}"#)).await;
        assert!(matches!(error, LlmError::Transient { retry_after: None, .. }), "HTTP {status}: {error:?}");
        assert_safe(&error);
    }
}

/// An HTTP \`status\` and \`body\` from the model server, and what the error must say of it.
struct UpstreamError {
    status: u16,
    body: &'static str,
    expected: &'static str,
}

#[tokio::test]
async fn client_errors_are_permanent_and_leak_nothing() {
    let cases = [
        UpstreamError {
            status: 400,
            body: r#"{"error":{"message":"upstream secret text","type":"invalid_request_error"}}"#,
            expected: "400",
        },
        UpstreamError {
            status: 401,
            body: r#"{"error":{"message":"Incorrect API key provided: sk-test-do-not-leak"}}"#,
            expected: "credentials",
        },
        UpstreamError { status: 404, body: "<html>upstream secret text</html>", expected: "not found" },
    ];
    for UpstreamError { status, body, expected } in cases {
        let error = error_for(Reply::status(status, &[], body)).await;
        assert!(matches!(error, LlmError::Permanent { .. }), "HTTP {status}: {error:?}");
        assert!(error.to_string().contains(expected), "HTTP {status}: {error}");
        assert_safe(&error);
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_transient() {
    let server = FakeOpenAi::start(Reply::hang()).await;
    let model =
        OpenAi::new(OpenAiSettings { request_timeout: Duration::from_millis(300), ..settings(&server.base_url) })
            .unwrap();
    let started = Instant::now();
    let (result, _) = complete(&model, &request(false)).await;

    let error = result.expect_err("a timeout");
    assert!(error.is_transient() && error.to_string().contains("within 0.3s"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_stream_that_stalls_times_out_as_transient() {
    let server = FakeOpenAi::start(Reply::event_stream().event(&content_chunk("Hel")).hang_until_closed()).await;
    let model =
        OpenAi::new(OpenAiSettings { idle_timeout: Duration::from_millis(200), ..settings(&server.base_url) }).unwrap();
    let started = Instant::now();
    let (result, deltas) = complete(&model, &request(false)).await;

    let error = result.expect_err("a stall");
    assert!(error.is_transient() && error.to_string().contains("stalled"), "{error}");
    assert_eq!(deltas, ["Hel"]);
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_stream_cut_before_done_is_transient() {
    let cut_mid_body = Reply::event_stream().event(&content_chunk("Hel"));
    let ended_early = Reply::event_stream().event(&content_chunk("Hel")).end_body();
    for (reply, reason) in [(cut_mid_body, "connection closed mid-body"), (ended_early, "body ended without [DONE]")] {
        let error = error_for(reply).await;
        assert!(error.is_transient(), "{reason}: {error:?}");
    }
}

#[tokio::test]
async fn invalid_json_in_a_chunk_is_permanent() {
    let error = error_for(Reply::event_stream().event(&content_chunk("Hel")).event("{not json").done()).await;
    assert!(matches!(&error, LlmError::Permanent { message } if message.contains("not valid JSON")), "{error:?}");
}

#[tokio::test]
async fn an_error_event_in_the_stream_is_transient() {
    let reply = Reply::event_stream().event(r#"{"error":{"message":"upstream secret text","code":"server_error"}}"#);
    let error = error_for(reply.done()).await;
    assert!(error.is_transient() && error.to_string().contains("server_error"), "{error:?}");
    assert_safe(&error);
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let (result, _) = complete(&OpenAi::new(settings(&base_url)).unwrap(), &request(false)).await;
    assert!(result.expect_err("refused").is_transient());
}

#[tokio::test]
async fn dropping_the_call_aborts_the_upstream_request() {
    let mut server = FakeOpenAi::start(Reply::event_stream().event(&content_chunk("Hel")).hang_until_closed()).await;
    let model = model(&server);
    let request = request(false);
    let (first_delta_tx, first_delta) = tokio::sync::oneshot::channel();
    let mut first_delta_tx = Some(first_delta_tx);
    let mut on_delta = |_: &str| {
        if let Some(tx) = first_delta_tx.take() {
            let _ = tx.send(());
        }
    };

    tokio::select! {
        result = model.complete(&request, &mut on_delta) => panic!("the call ended by itself: {result:?}"),
        _ = first_delta => {}
    }

    tokio::time::timeout(Duration::from_secs(1), server.connection_closed())
        .await
        .expect("the server saw the connection close within a second");
}

#[test]
fn base_urls_are_checked() {
    for bad in ["", "localhost:11434", "ftp://example.com/v1"] {
        assert!(OpenAi::new(settings(bad)).is_err(), "{bad:?}");
    }
}
