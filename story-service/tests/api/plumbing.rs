//! What the service has besides its own methods: reflection (v1 and v1alpha),
//! health, request ids, deadlines and message size limits, and the `ErrorInfo` on
//! errors that tonic makes itself (a missed deadline, a request too large or not
//! protobuf, an unknown method).

use crate::common;

use std::{collections::HashSet, time::Duration};

use common::*;
use fabula_contracts::pb::{
    accounts::{GetMeRequest, RegisterRequest},
    story::{CreateStoryRequest, GetWorldRequest, ListStoriesRequest, Story, Visibility},
};
use prost::bytes::{Buf, BufMut};
use tonic::{
    Code, Request, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_reflection::pb::{v1, v1alpha};

both_databases!(
    reflection_lists_every_service_in_v1_and_v1alpha,
    health_reports_serving,
    the_request_id_is_echoed_or_made,
    a_deadline_is_honoured,
    an_oversize_message_is_refused_and_the_server_goes_on,
    requests_tonic_refuses_itself_carry_an_error_info,
    a_story_just_over_one_mebibyte_is_invalid,
    a_page_of_large_stories_still_fits_in_a_message,
);

const SERVICES: &[&str] = &[
    "fabula.accounts.v1.AccountService",
    "fabula.story.v1.WorldService",
    "fabula.story.v1.StoryService",
    "fabula.story.v1.EntityService",
    "fabula.story.v1.LocationService",
    "fabula.story.v1.EventService",
    "grpc.health.v1.Health",
];

/// What reflection describes, besides the rest of the contracts.
const DESCRIBED: [&str; 4] = [
    "fabula.story.v1.WorldService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

async fn reflection_lists_every_service_in_v1_and_v1alpha(backend: Backend) {
    let app = spawn_app(backend).await;

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut responses = client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let response = responses.message().await.unwrap().expect("a v1 response");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) = response.message_response
    else {
        panic!("v1 answered ListServices with {:?}", response.message_response);
    };
    let v1_names: HashSet<_> = list.service.into_iter().map(|s| s.name).collect();

    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut responses = client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let response = responses.message().await.unwrap().expect("a v1alpha response");
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("v1alpha answered ListServices with {:?}", response.message_response);
    };
    let v1alpha_names: HashSet<_> = list.service.into_iter().map(|s| s.name).collect();

    for service in SERVICES {
        assert!(v1_names.contains(*service), "reflection v1 lists {service}: {v1_names:?}");
        assert!(v1alpha_names.contains(*service), "reflection v1alpha lists {service}: {v1alpha_names:?}");
    }

    // grpcurl describes a service through the file that holds it, health and
    // reflection included, whichever version of reflection it speaks.
    for symbol in DESCRIBED {
        let request = v1alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                symbol.into(),
            )),
        };
        let mut responses = client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
        let response = responses.message().await.unwrap().expect("a response");
        assert!(
            matches!(
                response.message_response,
                Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(ref files))
                    if !files.file_descriptor_proto.is_empty()
            ),
            "v1alpha describes {symbol}: {:?}",
            response.message_response
        );
    }
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel());
    for symbol in DESCRIBED {
        let request = v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::FileContainingSymbol(symbol.into())),
        };
        let mut responses = client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
        let response = responses.message().await.unwrap().expect("a response");
        assert!(
            matches!(
                response.message_response,
                Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(ref files))
                    if !files.file_descriptor_proto.is_empty()
            ),
            "v1 describes {symbol}: {:?}",
            response.message_response
        );
    }
}

async fn health_reports_serving(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut health = HealthClient::new(app.channel());
    for service in ["", "fabula.story.v1.WorldService", "fabula.accounts.v1.AccountService"] {
        let status = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(status.status(), ServingStatus::Serving, "{service:?} is SERVING");
    }
    let unknown = health.check(HealthCheckRequest { service: "no.such.Service".into() }).await;
    assert_eq!(unknown.map(drop).unwrap_err().code(), Code::NotFound, "an unknown service is NOT_FOUND");
}

async fn the_request_id_is_echoed_or_made(backend: Backend) {
    let app = spawn_app(backend).await;
    let with_id = |id: &str| {
        let mut request = Request::new(GetWorldRequest { id: unknown_id() });
        request.metadata_mut().insert("x-request-id", id.parse().unwrap());
        request
    };
    let failed = app.worlds().get_world(with_id("req-123-abc")).await.unwrap_err();
    assert_eq!(failed.code(), Code::NotFound);
    assert_eq!(
        failed.metadata().get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("req-123-abc"),
        "echoed on a handler's error"
    );

    let mut refused = Request::new(GetMeRequest {});
    refused.metadata_mut().insert("x-request-id", "req-refused".parse().unwrap());
    let refused = app.accounts().get_me(refused).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(
        refused.metadata().get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("req-refused"),
        "echoed when the auth layer refuses before any handler"
    );

    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Open", Visibility::Public).await;
    let mut request = Request::new(GetWorldRequest { id: world.id });
    request.metadata_mut().insert("x-request-id", "req-ok".parse().unwrap());
    let ok = app.worlds().get_world(request).await.unwrap();
    assert_eq!(ok.metadata().get("x-request-id").and_then(|v| v.to_str().ok()), Some("req-ok"), "echoed on success");

    let made = app.worlds().get_world(Request::new(GetWorldRequest { id: unknown_id() })).await.unwrap_err();
    let made = made.metadata().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(!made.is_empty(), "a request without an id gets one");
}

async fn a_deadline_is_honoured(backend: Backend) {
    let app = spawn_app(backend).await;
    // Registration hashes a password (tens of milliseconds): far longer than 1 ms.
    let mut hurried = Request::new(RegisterRequest {
        username: "hurried".into(),
        email: "hurried@example.test".into(),
        password: PASSWORD.into(),
    });
    hurried.set_timeout(Duration::from_millis(1));
    let status = app.accounts().register(hurried).await.expect_err("1 ms is not enough");
    // A tonic client gives up at the deadline itself, with a CANCELLED of its own that
    // never reached the server; the server's answer, DEADLINE_EXCEEDED with an
    // ErrorInfo, is checked over plain HTTP/2 in fabula-runtime's `server` tests.
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "a missed deadline ends the call: {status:?}"
    );
    if status.code() == Code::DeadlineExceeded {
        assert_eq!(reason(&status).as_deref(), Some("DEADLINE_EXCEEDED"), "the server's answer: {status:?}");
    }
    let mut patient = Request::new(RegisterRequest {
        username: "patient".into(),
        email: "patient@example.test".into(),
        password: PASSWORD.into(),
    });
    patient.set_timeout(Duration::from_secs(30));
    app.accounts().register(patient).await.expect("a generous deadline is met");
}

async fn an_oversize_message_is_refused_and_the_server_goes_on(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let huge = Story { title: "Huge".into(), content: "x".repeat(5 * 1024 * 1024), ..Story::default() };
    let request = CreateStoryRequest { world_id: world.id.clone(), story: Some(huge), request_id: String::new() };
    let status = app.stories().create_story(authed(request, &alice.token)).await.expect_err("5 MiB is over the limit");
    assert!(
        matches!(status.code(), Code::ResourceExhausted | Code::OutOfRange),
        "a message over 4 MiB is refused as too large: {status:?}"
    );
    assert_eq!(reason(&status).as_deref(), Some("MESSAGE_TOO_LARGE"), "{status:?}");
    assert_eq!(app.count("stories", &[]).await, 0);
    app.create_story(&alice, &world.id, "Small", Visibility::Draft).await;
}

/// A raw call tonic itself refuses: `bytes` sent to `method`, answered with `code` and the
/// `ErrorInfo.reason` `want`; `what` says what is wrong with it.
struct RawCall {
    what: &'static str,
    method: &'static str,
    bytes: &'static [u8],
    code: Code,
    want: &'static str,
}

async fn requests_tonic_refuses_itself_carry_an_error_info(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = &[
        RawCall {
            what: "bytes that are not protobuf",
            method: GET_WORLD,
            bytes: &[0x0a, 0xff],
            code: Code::Internal,
            want: "MALFORMED_REQUEST",
        },
        RawCall {
            what: "a field of the wrong wire type",
            method: GET_WORLD,
            bytes: &[0x08, 0x01],
            code: Code::Internal,
            want: "MALFORMED_REQUEST",
        },
        RawCall {
            what: "an unknown method of a known service",
            method: "/fabula.story.v1.WorldService/FlyToTheMoon",
            bytes: &[],
            code: Code::Unimplemented,
            want: "UNIMPLEMENTED",
        },
        RawCall {
            what: "an unknown service",
            method: "/fabula.moon.v1.MoonService/GetMoon",
            bytes: &[],
            code: Code::Unimplemented,
            want: "UNIMPLEMENTED",
        },
    ];
    for RawCall { what, method, bytes, code, want } in cases {
        let status = expect_code(call_raw(&app, method, bytes).await, *code, want, what);
        assert!(!status.message().is_empty(), "{what}: a message says what went wrong ({status:?})");
    }
    // The server goes on.
    let malformed = call_raw(&app, GET_WORLD, &[0x0a, 0xff]).await;
    expect_code(malformed, Code::Internal, "MALFORMED_REQUEST", "the same again");
    let alice = app.register("alice").await;
    app.create_world(&alice, "Still here", Visibility::Public).await;
}

const GET_WORLD: &str = "/fabula.story.v1.WorldService/GetWorld";

/// Calls `method` with `bytes` as its message, whatever they are.
async fn call_raw(app: &TestApp, method: &'static str, bytes: &[u8]) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(app.channel());
    grpc.ready().await.expect("the channel is ready");
    let response = grpc.unary(Request::new(bytes.to_vec()), PathAndQuery::from_static(method), RawCodec).await?;
    Ok(response.into_inner())
}

/// Messages as the bytes they are, unchecked both ways.
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

async fn a_story_just_over_one_mebibyte_is_invalid(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let over = Story { title: "Over".into(), content: "x".repeat(1024 * 1024 + 1), ..Story::default() };
    let request = CreateStoryRequest { world_id: world.id.clone(), story: Some(over), request_id: String::new() };
    expect_invalid(
        app.stories().create_story(authed(request, &alice.token)).await,
        "story.content",
        "1 MiB and one byte of content",
    );
}

async fn a_page_of_large_stories_still_fits_in_a_message(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Novels", Visibility::Private).await;
    // Five stories of 1 MiB each: a default page of them would be a 5 MiB message.
    for n in 0..5 {
        let story = Story { title: format!("Tome {n}"), content: "x".repeat(1024 * 1024), ..Story::default() };
        let request = CreateStoryRequest { world_id: world.id.clone(), story: Some(story), request_id: String::new() };
        app.stories().create_story(authed(request, &alice.token)).await.expect("1 MiB of content is allowed");
    }
    let (mut seen, mut token) = (0, String::new());
    loop {
        let request =
            ListStoriesRequest { world_id: world.id.clone(), page_token: token.clone(), ..Default::default() };
        let page = app
            .stories()
            .list_stories(authed(request, &alice.token))
            .await
            .expect("a page of stories fits in the server's 4 MiB message limit")
            .into_inner();
        seen += page.stories.len();
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, 5, "every story is listed");
}
