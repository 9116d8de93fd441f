//! Server reflection, v1 and v1alpha, over Fabula's contracts, the health service and
//! reflection itself: what grpcurl and other tools read to call a server they have no
//! `.proto` files for.
//!
//! tonic-reflection's own services end the whole stream with NOT_FOUND at the first
//! unknown symbol, and each serves its own version's descriptor only (grpcurl 1.8,
//! which speaks v1alpha, could not describe `grpc.reflection.v1.ServerReflection`).
//! This one serves every descriptor on both versions and answers each request on the
//! stream, an unknown name with an in-stream `ErrorResponse`, as the protocol says. A
//! file is sent with those of its dependencies not yet sent on the stream, as gRPC's
//! reference implementations do. Its messages and clients are tonic-reflection's
//! ([`v1`], [`v1alpha`]); both versions share one wire format.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    pin::Pin,
    sync::Arc,
};

use prost::Message;
use prost_types::{DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto};
use tokio_stream::{Stream, StreamExt};
use tonic::{Code, Request, Response, Status, Streaming};
pub use tonic_reflection::pb::{v1, v1alpha};
use v1::{
    ErrorResponse, ExtensionNumberResponse, ExtensionRequest, FileDescriptorResponse, ListServiceResponse,
    ServerReflectionRequest, ServerReflectionResponse, ServiceResponse, server_reflection_request::MessageRequest,
    server_reflection_response::MessageResponse,
};

use crate::errors::quote;

/// The reflection service, both versions: clones share one index.
#[derive(Clone, Debug)]
pub struct Reflection {
    index: Arc<Index>,
}

impl Reflection {
    /// Reflection over the files of `descriptor_sets` (encoded `FileDescriptorSet`s, the
    /// first copy of a file kept), listing `services`. Fails on a malformed set.
    pub fn new(descriptor_sets: &[&[u8]], services: Vec<String>) -> Result<Self, prost::DecodeError> {
        let mut index = Index { services, ..Index::default() };
        for set in descriptor_sets {
            for raw in RawFileSet::decode(*set)?.file {
                index.add_file(raw)?;
            }
        }
        Ok(Self { index: Arc::new(index) })
    }

    /// The answers to a stream of `requests`, one each, in order.
    fn answer_stream(
        &self,
        requests: impl Stream<Item = Result<ServerReflectionRequest, Status>> + Send + 'static,
    ) -> impl Stream<Item = Result<ServerReflectionResponse, Status>> + Send + 'static {
        let index = self.index.clone();
        let mut sent = HashSet::new();
        requests.map(move |request| request.map(|request| index.respond(request, &mut sent)))
    }
}

type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl v1::server_reflection_server::ServerReflection for Reflection {
    type ServerReflectionInfoStream = Answers<ServerReflectionResponse>;

    async fn server_reflection_info(
        &self,
        request: Request<Streaming<ServerReflectionRequest>>,
    ) -> Result<Response<Self::ServerReflectionInfoStream>, Status> {
        Ok(Response::new(Box::pin(self.answer_stream(request.into_inner()))))
    }
}

#[tonic::async_trait]
impl v1alpha::server_reflection_server::ServerReflection for Reflection {
    type ServerReflectionInfoStream = Answers<v1alpha::ServerReflectionResponse>;

    async fn server_reflection_info(
        &self,
        request: Request<Streaming<v1alpha::ServerReflectionRequest>>,
    ) -> Result<Response<Self::ServerReflectionInfoStream>, Status> {
        let requests = request.into_inner().map(|request| same_wire_format(&request?));
        let answers = self.answer_stream(requests).map(|answer| same_wire_format(&answer?));
        Ok(Response::new(Box::pin(answers)))
    }
}

/// `message` read as the other version's message of the same wire format.
fn same_wire_format<T: Message, U: Message + Default>(message: &T) -> Result<U, Status> {
    U::decode(message.encode_to_vec().as_slice())
        .map_err(|_| Status::internal("reflection v1 and v1alpha messages differ"))
}

/// An encoded `FileDescriptorSet` whose files are left encoded: served as they were
/// compiled, custom options (`google.api.http`, Fabula's own) included, which decoding
/// into `prost_types` would drop.
#[derive(Clone, PartialEq, Message)]
struct RawFileSet {
    #[prost(bytes = "vec", repeated, tag = "1")]
    file: Vec<Vec<u8>>,
}

/// Every file, and what each fully-qualified name is declared in.
#[derive(Debug, Default)]
struct Index {
    services: Vec<String>,
    files: HashMap<String, File>,
    /// Symbol (package-qualified, no leading dot) → the name of its file.
    symbols: HashMap<String, String>,
    /// Extended message → its extension numbers, each with the name of its file.
    extensions: HashMap<String, HashMap<i32, String>>,
}

#[derive(Debug)]
struct File {
    raw: Vec<u8>,
    dependencies: Vec<String>,
}

impl Index {
    fn add_file(&mut self, raw: Vec<u8>) -> Result<(), prost::DecodeError> {
        let file = FileDescriptorProto::decode(raw.as_slice())?;
        let name = file.name().to_owned();
        if self.files.contains_key(&name) {
            return Ok(());
        }
        let package = file.package();
        for service in &file.service {
            let service_name = qualified(package, service.name());
            for method in &service.method {
                self.declare(&qualified(&service_name, method.name()), &name);
            }
            self.declare(&service_name, &name);
        }
        for message in &file.message_type {
            self.add_message(package, message, &name);
        }
        for enumeration in &file.enum_type {
            self.add_enum(package, enumeration, &name);
        }
        for extension in &file.extension {
            self.add_extension(package, extension, &name);
        }
        self.files.insert(name, File { raw, dependencies: file.dependency });
        Ok(())
    }

    fn add_message(&mut self, scope: &str, message: &DescriptorProto, file: &str) {
        let message_name = qualified(scope, message.name());
        for field in &message.field {
            self.declare(&qualified(&message_name, field.name()), file);
        }
        for nested in &message.nested_type {
            self.add_message(&message_name, nested, file);
        }
        for enumeration in &message.enum_type {
            self.add_enum(&message_name, enumeration, file);
        }
        for extension in &message.extension {
            self.add_extension(&message_name, extension, file);
        }
        self.declare(&message_name, file);
    }

    /// An enum and its values, which protobuf scopes beside the enum, not inside it.
    fn add_enum(&mut self, scope: &str, enumeration: &EnumDescriptorProto, file: &str) {
        for value in &enumeration.value {
            self.declare(&qualified(scope, value.name()), file);
        }
        self.declare(&qualified(scope, enumeration.name()), file);
    }

    fn add_extension(&mut self, scope: &str, extension: &FieldDescriptorProto, file: &str) {
        self.declare(&qualified(scope, extension.name()), file);
        let extended = extension.extendee().trim_start_matches('.').to_owned();
        self.extensions.entry(extended).or_default().insert(extension.number(), file.to_owned());
    }

    fn declare(&mut self, symbol: &str, file: &str) {
        self.symbols.insert(symbol.to_owned(), file.to_owned());
    }

    /// The answer to one request; `sent` holds the files already sent on its stream.
    fn respond(&self, request: ServerReflectionRequest, sent: &mut HashSet<String>) -> ServerReflectionResponse {
        let answer = match &request.message_request {
            None => Err(error(Code::InvalidArgument, "the request asks for nothing".to_owned())),
            Some(asked) => self.answer(asked, sent),
        };
        ServerReflectionResponse {
            valid_host: request.host.clone(),
            message_response: Some(answer.unwrap_or_else(MessageResponse::ErrorResponse)),
            original_request: Some(request),
        }
    }

    fn answer(&self, asked: &MessageRequest, sent: &mut HashSet<String>) -> Result<MessageResponse, ErrorResponse> {
        let file = match asked {
            MessageRequest::ListServices(_) => return Ok(self.list_services()),
            MessageRequest::AllExtensionNumbersOfType(message) => return self.extension_numbers(message),
            MessageRequest::FileByFilename(name) => {
                self.files.get_key_value(name).map(|(name, _)| name).ok_or_else(|| not_found("file", name))
            }
            MessageRequest::FileContainingSymbol(symbol) => {
                self.symbols.get(symbol).ok_or_else(|| not_found("symbol", symbol))
            }
            MessageRequest::FileContainingExtension(ExtensionRequest { containing_type, extension_number }) => self
                .extensions
                .get(containing_type)
                .and_then(|numbers| numbers.get(extension_number))
                .ok_or_else(|| not_found("extension of", &format!("{containing_type} {extension_number}"))),
        }?;
        Ok(self.files_to_send(file, sent))
    }

    fn list_services(&self) -> MessageResponse {
        MessageResponse::ListServicesResponse(ListServiceResponse {
            service: self.services.iter().map(|name| ServiceResponse { name: name.clone() }).collect(),
        })
    }

    /// The extension numbers of `message` (none for a message nothing extends).
    fn extension_numbers(&self, message: &str) -> Result<MessageResponse, ErrorResponse> {
        if !self.symbols.contains_key(message) {
            return Err(not_found("message", message));
        }
        let numbers: BTreeSet<i32> = self.extensions.get(message).into_iter().flat_map(|n| n.keys().copied()).collect();
        Ok(MessageResponse::AllExtensionNumbersResponse(ExtensionNumberResponse {
            base_type_name: message.to_owned(),
            extension_number: numbers.into_iter().collect(),
        }))
    }

    /// File `name` (known) and those of its dependencies, direct or not, that were not
    /// sent on this stream yet, which are now.
    fn files_to_send(&self, name: &str, sent: &mut HashSet<String>) -> MessageResponse {
        let mut files = Vec::new();
        let mut next = vec![name.to_owned()];
        sent.remove(name);
        while let Some(name) = next.pop() {
            let Some(file) = self.files.get(&name).filter(|_| sent.insert(name.clone())) else {
                continue;
            };
            files.push(file.raw.clone());
            next.extend(file.dependencies.iter().rev().cloned());
        }
        MessageResponse::FileDescriptorResponse(FileDescriptorResponse { file_descriptor_proto: files })
    }
}

/// `name` inside `scope` (a package or a message), dotted.
fn qualified(scope: &str, name: &str) -> String {
    if scope.is_empty() { name.to_owned() } else { format!("{scope}.{name}") }
}

fn not_found(what: &str, name: &str) -> ErrorResponse {
    error(Code::NotFound, format!("no {what} {} is known here", quote(name)))
}

fn error(code: Code, message: String) -> ErrorResponse {
    ErrorResponse { error_code: code as i32, error_message: message }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where one name is declared, if anywhere.
    struct Lookup {
        symbol: &'static str,
        file: Option<&'static str>,
    }

    fn fabula() -> Index {
        let sets = [fabula_contracts::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET];
        let reflection = Reflection::new(&sets, Vec::new()).expect("Fabula's descriptor sets decode");
        Arc::try_unwrap(reflection.index).expect("the only handle")
    }

    #[test]
    fn every_kind_of_name_leads_to_its_file() {
        const WORLDS: Option<&str> = Some("fabula/story/v1/worlds.proto");
        let cases = [
            Lookup { symbol: "fabula.story.v1.WorldService", file: WORLDS },
            Lookup { symbol: "fabula.story.v1.WorldService.GetWorld", file: WORLDS },
            Lookup { symbol: "fabula.story.v1.GetWorldRequest", file: WORLDS },
            Lookup { symbol: "fabula.story.v1.GetWorldRequest.id", file: WORLDS },
            Lookup { symbol: "grpc.health.v1.HealthCheckResponse.ServingStatus", file: Some("health.proto") },
            Lookup { symbol: "grpc.health.v1.HealthCheckResponse.SERVING", file: Some("health.proto") },
            Lookup { symbol: "fabula.options.v1.auth_policy", file: Some("fabula/options/v1/auth.proto") },
            Lookup { symbol: "google.protobuf.Timestamp", file: Some("google/protobuf/timestamp.proto") },
            Lookup { symbol: "fabula.story.v1", file: None },
            Lookup { symbol: ".fabula.story.v1.WorldService", file: None },
            Lookup { symbol: "grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING", file: None },
            Lookup { symbol: "", file: None },
        ];
        let index = fabula();
        for case in cases {
            assert_eq!(index.symbols.get(case.symbol).map(String::as_str), case.file, "{:?}", case.symbol);
        }
    }

    fn ask(index: &Index, asked: MessageRequest, sent: &mut HashSet<String>) -> MessageResponse {
        let request = ServerReflectionRequest { host: String::new(), message_request: Some(asked) };
        index.respond(request, sent).message_response.expect("an answer")
    }

    /// The names of the files of `answer`, which must be files.
    fn file_names(answer: MessageResponse) -> Vec<String> {
        let MessageResponse::FileDescriptorResponse(files) = answer else {
            panic!("not files: {answer:?}");
        };
        let decode = |raw: Vec<u8>| FileDescriptorProto::decode(raw.as_slice()).expect("a file").name().to_owned();
        files.file_descriptor_proto.into_iter().map(decode).collect()
    }

    #[test]
    fn a_file_comes_with_the_dependencies_not_yet_sent_on_its_stream() {
        let index = fabula();
        let mut sent = HashSet::new();
        let symbol = |name: &str| MessageRequest::FileContainingSymbol(name.to_owned());
        let first = file_names(ask(&index, symbol("fabula.story.v1.WorldService"), &mut sent));
        assert_eq!(first[0], "fabula/story/v1/worlds.proto", "the file asked for comes first");
        for dependency in ["google/api/annotations.proto", "google/api/http.proto", "google/protobuf/descriptor.proto"]
        {
            assert!(first.iter().any(|f| f == dependency), "{dependency} is sent along: {first:?}");
        }
        let second = file_names(ask(&index, symbol("fabula.story.v1.StoryService"), &mut sent));
        assert_eq!(second, ["fabula/story/v1/stories.proto"], "its dependencies went with the first");
        let again =
            file_names(ask(&index, MessageRequest::FileByFilename("fabula/story/v1/worlds.proto".into()), &mut sent));
        assert_eq!(again, ["fabula/story/v1/worlds.proto"], "a file asked for again is sent again, alone");
    }

    #[test]
    fn extensions_are_found_by_the_message_they_extend() {
        let index = fabula();
        let mut sent = HashSet::new();
        let asked = MessageRequest::AllExtensionNumbersOfType("google.protobuf.MethodOptions".into());
        let MessageResponse::AllExtensionNumbersResponse(numbers) = ask(&index, asked, &mut sent) else {
            panic!("no extension numbers");
        };
        assert!(numbers.extension_number.contains(&72_295_728), "google.api.http: {numbers:?}");
        assert!(numbers.extension_number.contains(&51_001), "fabula.options.v1.auth_policy: {numbers:?}");
        let asked = MessageRequest::FileContainingExtension(ExtensionRequest {
            containing_type: "google.protobuf.MethodOptions".into(),
            extension_number: 51_001,
        });
        assert_eq!(file_names(ask(&index, asked, &mut sent))[0], "fabula/options/v1/auth.proto");
        let asked = MessageRequest::AllExtensionNumbersOfType("google.protobuf.Timestamp".into());
        assert!(
            matches!(ask(&index, asked, &mut sent), MessageResponse::AllExtensionNumbersResponse(n) if n.extension_number.is_empty()),
            "a message nothing extends has no extension numbers"
        );
    }

    /// One request that names nothing this server knows.
    struct Unknown {
        asked: MessageRequest,
        says: &'static str,
    }

    #[test]
    fn an_unknown_name_is_an_error_response_that_quotes_it_short() {
        let long = "x".repeat(100_000);
        let cases = [
            Unknown { asked: MessageRequest::FileContainingSymbol("no.Such".into()), says: "no symbol \"no.Such\"" },
            Unknown { asked: MessageRequest::FileByFilename("no.proto".into()), says: "no file \"no.proto\"" },
            Unknown {
                asked: MessageRequest::FileContainingExtension(ExtensionRequest {
                    containing_type: "google.protobuf.MethodOptions".into(),
                    extension_number: 1,
                }),
                says: "no extension of",
            },
            Unknown { asked: MessageRequest::AllExtensionNumbersOfType("no.Such".into()), says: "no message" },
            Unknown { asked: MessageRequest::FileContainingSymbol(long), says: "(100000 characters)" },
        ];
        let index = fabula();
        for case in cases {
            let answer = ask(&index, case.asked.clone(), &mut HashSet::new());
            let MessageResponse::ErrorResponse(error) = answer else {
                panic!("{:?} was answered {answer:?}", case.asked);
            };
            assert_eq!(error.error_code, Code::NotFound as i32, "{:?}", case.asked);
            assert!(error.error_message.contains(case.says), "{:?}: {}", case.asked, error.error_message);
            assert!(error.error_message.len() < 200, "{:?}: {}", case.asked, error.error_message);
        }
    }
}
