//! A service Fabula does not have, declared only in a test contract
//! (`tests/contracts/notes.proto`) and served by a gRPC server of dynamic messages on
//! loopback: through the gateway it is routed, authorised, answered and limited exactly
//! as its contract declares (upstream, auth policy, success status, `Location`, body
//! limit, rate class), and documented in `/openapi.json`, with no gateway code.

use std::{
    convert::Infallible,
    net::SocketAddr,
    path::Path,
    task::{Context, Poll},
    time::Duration,
};

use fabula_contracts::pb::accounts::Role;
use fabula_runtime::token::{SigningKey, TokenIssuer};
use fabula_testkit::Server;
use gateway::upstream::DynamicCodec;
use http::StatusCode;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value as Field};
use serde_json::{Value, json};
use tonic::{
    Request, Response, Status,
    body::Body,
    server::{Grpc, NamedService, UnaryService},
    service::Routes,
};
use uuid::Uuid;

use crate::common;

/// The test contract and Fabula's options, compiled as the contracts are.
fn notes_contract() -> DescriptorPool {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let includes = [manifest.join("tests/contracts"), manifest.join("../proto/proto")];
    let mut compiler = protox::Compiler::new(includes).expect("the include paths exist");
    compiler.include_imports(true);
    compiler.open_files(["notes.proto"]).expect("the test contract compiles");
    compiler.descriptor_pool()
}

/// NoteService as a server of dynamic messages: CreateNote answers the note with the
/// id `n-1`, GetNote a note of the id asked for.
#[derive(Clone)]
struct Notes {
    pool: DescriptorPool,
}

impl Notes {
    fn message(&self, name: &str) -> MessageDescriptor {
        self.pool.get_message_by_name(&format!("fabula.test.v1.{name}")).expect("declared in the test contract")
    }

    fn note(&self, id: &str, text: &str) -> DynamicMessage {
        let mut note = DynamicMessage::new(self.message("Note"));
        note.set_field_by_name("id", Field::String(id.into()));
        note.set_field_by_name("text", Field::String(text.into()));
        note
    }
}

/// One method of [`Notes`].
struct Method(Notes, &'static str);

impl UnaryService<DynamicMessage> for Method {
    type Response = DynamicMessage;
    type Future = std::future::Ready<Result<Response<DynamicMessage>, Status>>;

    fn call(&mut self, request: Request<DynamicMessage>) -> Self::Future {
        let request = request.into_inner();
        let text = |message: &DynamicMessage, field: &str| {
            message.get_field_by_name(field).and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
        };
        let note = match self.1 {
            "CreateNote" => {
                let sent = request.get_field_by_name("note").and_then(|v| v.as_message().cloned());
                self.0.note("n-1", &sent.map(|note| text(&note, "text")).unwrap_or_default())
            }
            _ => self.0.note(&text(&request, "id"), "a note"),
        };
        std::future::ready(Ok(Response::new(note)))
    }
}

impl NamedService for Notes {
    const NAME: &'static str = "fabula.test.v1.NoteService";
}

impl tower::Service<http::Request<Body>> for Notes {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let notes = self.clone();
        Box::pin(async move {
            let method = match request.uri().path().rsplit('/').next() {
                Some("CreateNote") => "CreateNote",
                Some("GetNote") => "GetNote",
                _ => return Ok(Status::unimplemented("no such method").into_http()),
            };
            let input = notes.message(if method == "CreateNote" { "CreateNoteRequest" } else { "GetNoteRequest" });
            let mut grpc = Grpc::new(DynamicCodec::new(input));
            Ok(grpc.unary(Method(notes, method), request).await)
        })
    }
}

/// The notes server on a free loopback port.
async fn start_notes(pool: DescriptorPool) -> (SocketAddr, Server) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("its address");
    let server = Server::spawn("the notes server", move |shutdown| {
        tonic::transport::Server::builder()
            .add_routes(Routes::new(Notes { pool }))
            .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), shutdown)
    });
    (addr, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_only_a_test_contract_declares_is_served_as_declared() {
    let contract = notes_contract();
    let (notes_addr, _notes) = start_notes(contract.clone()).await;
    let key = SigningKey::generate();
    let mut settings =
        gateway::Settings::for_tests("http://127.0.0.1:9", &format!("http://{notes_addr}"), "unused".into());
    settings.rate_limits.off = false;
    settings.rate_limits.jobs_per_minute = 2;
    let app = gateway::build_with_contracts(settings, vec![key.verifying_key()], contract)
        .await
        .expect("the gateway serves the test contract");
    let base = format!("http://{}", app.local_addr());
    let _gateway = Server::spawn("gateway", |shutdown| app.run_until_stopped(shutdown));
    let token = TokenIssuer::new(key, Duration::from_secs(60)).issue(Uuid::now_v7(), Role::User).token;
    let http = common::http_client();
    let create = |body: Value, token: Option<&str>| {
        let request = http.post(format!("{base}/v1/notes")).json(&body);
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .send()
    };

    // The policy (USER), at the edge.
    let anonymous = common::Answer::read(create(json!({"text": "hi"}), None).await.unwrap()).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{:?}", anonymous.body);
    // The upstream (GPT_WORKER's address), the success status and the Location.
    let created = create(json!({"text": "hi"}), Some(&token)).await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["location"], "/v1/notes/n-1");
    assert_eq!(common::Answer::read(created).await.body, json!({"id": "n-1", "text": "hi"}));
    // The large body: over the default 1 MiB, within a story's 2 MiB.
    let large = create(json!({"text": "x".repeat(1_500_000)}), Some(&token)).await.unwrap();
    assert_eq!(large.status(), StatusCode::CREATED, "a large body is taken");
    // The rate class: two starts a minute, per user.
    let limited = common::Answer::read(create(json!({"text": "again"}), Some(&token)).await.unwrap()).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", limited.body);
    assert_eq!(common::reason(&limited.body).as_deref(), Some("RATE_LIMITED"));

    // A PUBLIC method, with a path variable, answered 200.
    let got = common::Answer::read(http.get(format!("{base}/v1/notes/n-7")).send().await.unwrap()).await;
    assert_eq!((got.status, got.body), (StatusCode::OK, json!({"id": "n-7", "text": "a note"})));
    // And the document says all of it.
    let document = common::Answer::read(http.get(format!("{base}/openapi.json")).send().await.unwrap()).await.body;
    let post = &document["paths"]["/v1/notes"]["post"];
    assert!(post["responses"]["201"].is_object(), "{post}");
    assert!(document["paths"]["/v1/notes/{id}"]["get"].is_object(), "{}", document["paths"]);
}
