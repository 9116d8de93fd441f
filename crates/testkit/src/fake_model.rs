//! The fake model server: an OpenAI-compatible server on loopback that the tests of
//! the real provider and of jobs point gpt-worker at. It is a raw TCP server so
//! it can misbehave precisely: each connection's request is recorded, then a scripted [`Reply`] is
//! played step by step (bytes written and flushed one step at a time, pauses, a hang), and the
//! server reports when the client closes a connection it was hanging on. A script of replies
//! answers each new connection with the next one. Every response closes its connection, so each
//! call of the client meets the reply meant for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: serde_json::Value,
}

#[derive(Debug, Clone)]
enum Step {
    Write(Vec<u8>),
    Pause(Duration),
    /// Read until the client closes the connection, then report it.
    HangUntilClosed,
}

/// What the server does after reading a request. Once the steps run out it closes the connection.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    steps: Vec<Step>,
}

impl Reply {
    /// `200 OK` for an event stream (chunked), with no events yet.
    pub fn event_stream() -> Self {
        Self::default().write(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".as_bytes(),
        )
    }

    /// A whole event stream: a chunk per content delta, `[DONE]`, and the end of the body.
    pub fn streaming(deltas: &[&str]) -> Self {
        deltas.iter().fold(Self::event_stream(), |reply, delta| reply.event(&content_chunk(delta))).done()
    }

    /// A complete response with a status, extra headers and a JSON body.
    pub fn status(code: u16, headers: &[(&str, &str)], body: &str) -> Self {
        let mut head = format!("HTTP/1.1 {code} Status\r\ncontent-type: application/json\r\nconnection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
        Self::default().write(head.as_bytes())
    }

    /// Accepts the request and never answers.
    pub fn hang() -> Self {
        Self::default().hang_until_closed()
    }

    /// One `data:` event in its own HTTP chunk.
    pub fn event(self, data: &str) -> Self {
        self.chunk(format!("data: {data}\n\n").as_bytes())
    }

    /// Raw bytes of the body in their own HTTP chunk (and so their own TCP write).
    pub fn chunk(self, bytes: &[u8]) -> Self {
        let mut framed = format!("{:x}\r\n", bytes.len()).into_bytes();
        framed.extend_from_slice(bytes);
        framed.extend_from_slice(b"\r\n");
        self.write(&framed)
    }

    /// `data: [DONE]` and the end of the body.
    pub fn done(self) -> Self {
        self.event("[DONE]").end_body()
    }

    /// The last, empty HTTP chunk: the body ends cleanly.
    pub fn end_body(self) -> Self {
        self.write(b"0\r\n\r\n")
    }

    pub fn pause(mut self, duration: Duration) -> Self {
        self.steps.push(Step::Pause(duration));
        self
    }

    pub fn hang_until_closed(mut self) -> Self {
        self.steps.push(Step::HangUntilClosed);
        self
    }

    fn write(mut self, bytes: &[u8]) -> Self {
        self.steps.push(Step::Write(bytes.to_vec()));
        self
    }
}

/// A streamed chunk carrying one piece of content.
pub fn content_chunk(content: &str) -> String {
    serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "fake-model",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}],
    })
    .to_string()
}

/// The running server; it stops when dropped with the test's runtime.
pub struct FakeOpenAi {
    pub base_url: String,
    requests: mpsc::UnboundedReceiver<RecordedRequest>,
    closed: mpsc::UnboundedReceiver<()>,
}

impl FakeOpenAi {
    /// Starts the server on 127.0.0.1, port 0; every connection gets `reply`.
    pub async fn start(reply: Reply) -> Self {
        Self::start_script(vec![reply]).await
    }

    /// Starts the server on 127.0.0.1, port 0; the nth connection gets the nth reply, and
    /// those after the last get the last.
    pub async fn start_script(replies: Vec<Reply>) -> Self {
        assert!(!replies.is_empty(), "a script needs a reply");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fake server");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("its address"));
        let (requests_tx, requests) = mpsc::unbounded_channel();
        let (closed_tx, closed) = mpsc::unbounded_channel();
        let served = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let next = served.fetch_add(1, Ordering::SeqCst).min(replies.len() - 1);
                let connection = Connection {
                    reply: replies[next].clone(),
                    requests: requests_tx.clone(),
                    closed: closed_tx.clone(),
                };
                tokio::spawn(connection.serve(stream));
            }
        });
        Self { base_url, requests, closed }
    }

    /// The next request the server received, waiting at most `timeout` for it.
    pub async fn request_within(&mut self, timeout: Duration) -> RecordedRequest {
        tokio::time::timeout(timeout, self.request()).await.expect("the server received a request in time")
    }

    /// How many requests arrived that no one has taken with [`FakeOpenAi::request`] yet.
    pub fn unread_requests(&mut self) -> usize {
        let mut count = 0;
        while self.requests.try_recv().is_ok() {
            count += 1;
        }
        count
    }

    /// The next request the server received.
    pub async fn request(&mut self) -> RecordedRequest {
        self.requests.recv().await.expect("the server recorded a request")
    }

    /// Waits until a client closes a connection the server was hanging on.
    pub async fn connection_closed(&mut self) {
        self.closed.recv().await.expect("the server is running");
    }
}

struct Connection {
    reply: Reply,
    requests: mpsc::UnboundedSender<RecordedRequest>,
    closed: mpsc::UnboundedSender<()>,
}

impl Connection {
    async fn serve(self, mut stream: TcpStream) {
        let Some(request) = read_request(&mut stream).await else { return };
        let _ = self.requests.send(request);
        for step in self.reply.steps {
            match step {
                Step::Write(bytes) => {
                    if stream.write_all(&bytes).await.and(stream.flush().await).is_err() {
                        return;
                    }
                }
                Step::Pause(duration) => tokio::time::sleep(duration).await,
                Step::HangUntilClosed => {
                    let mut sink = [0u8; 1024];
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                    let _ = self.closed.send(());
                    return;
                }
            }
        }
    }
}

/// Reads one HTTP/1.1 request with a `content-length` body.
async fn read_request(stream: &mut TcpStream) -> Option<RecordedRequest> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let mut piece = [0u8; 4096];
        let read = stream.read(&mut piece).await.ok().filter(|&n| n > 0)?;
        buffer.extend_from_slice(&piece[..read]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, path) = (request_line.next()?.to_owned(), request_line.next()?.to_owned());
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let mut piece = [0u8; 4096];
        let read = stream.read(&mut piece).await.ok().filter(|&n| n > 0)?;
        body.extend_from_slice(&piece[..read]);
    }
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    Some(RecordedRequest { method, path, headers, body })
}
