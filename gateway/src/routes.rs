//! The route table: every Fabula method with a `google.api.http` binding, read once
//! at start-up from the descriptor pool, and the matcher that finds a request's route.
//! No route is written by hand and nothing is guessed from names: a service declares
//! its upstream and a method its REST answer (`fabula/options/v1/gateway.proto`), so a
//! new service or RPC appears here by itself. What the gateway cannot serve (no
//! upstream, a `response_body`, a verb it does not know, two bindings of one route)
//! stops it at start-up with the service or method named.

use std::sync::Arc;

use fabula_contracts::pb::fabula::options::v1::RestOptions;
pub use fabula_contracts::pb::fabula::options::v1::{RateClass, Upstream};
use fabula_runtime::auth::AuthPolicy;
use http::{Method, StatusCode, uri::PathAndQuery};
use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value,
};

use crate::config::Settings;

/// The extension that carries a method's REST binding.
const HTTP_RULE: &str = "google.api.http";
/// The extension that carries a method's auth policy.
const AUTH_POLICY: &str = "fabula.options.v1.auth_policy";
/// The extension that names a service's upstream.
const UPSTREAM: &str = "fabula.options.v1.upstream";
/// The extension that carries a method's REST answer.
const REST: &str = "fabula.options.v1.rest";
/// The extension that marks a field's behaviour (REQUIRED, OUTPUT_ONLY…).
const FIELD_BEHAVIOR: &str = "google.api.field_behavior";

/// One piece of a path template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// A variable bound to a field path of the request, by proto names (`story.id`).
    Variable(String),
}

/// A parsed path template such as `/v1/stories/{story.id}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub text: String,
    pub segments: Vec<Segment>,
}

/// Where the request body goes.
#[derive(Clone, Debug)]
pub enum BodyRule {
    /// No body; every field comes from the path and the query.
    None,
    /// `body: "*"`: the body is the request message.
    Whole,
    /// `body: "field"`: the body is that field.
    Field(FieldDescriptor),
}

/// Everything the gateway needs to serve one binding of one method.
#[derive(Debug)]
pub struct Route {
    /// The route's name in metrics and logs: `GET /v1/stories/{id}`.
    pub name: String,
    pub method: MethodDescriptor,
    pub grpc_path: PathAndQuery,
    pub http_method: Method,
    pub template: Template,
    pub body: BodyRule,
    /// Whether the body is a field declared REQUIRED: a call without it is refused.
    pub body_required: bool,
    pub policy: AuthPolicy,
    pub upstream: Upstream,
    pub success: StatusCode,
    /// The template of the created resource's GET route, for `Location`.
    pub location: Option<Template>,
    pub rate_class: RateClass,
    pub body_limit: usize,
}

/// What a request path and method found.
pub enum Found<'a> {
    Route(&'a Arc<Route>, Vec<(String, String)>),
    /// The path exists, with these methods only.
    WrongMethod(Vec<Method>),
    Nothing,
}

/// Why the route table could not be built: a contract the gateway cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("cannot decode the descriptor set: {0}")]
    Descriptors(#[from] prost_reflect::DescriptorError),
    #[error("{0} is missing from the descriptor set")]
    Missing(&'static str),
    #[error("{method}: {reason}")]
    Binding { method: String, reason: String },
    #[error("{service} declares no upstream: give it `option ({UPSTREAM}) = …;`")]
    NoUpstream { service: String },
    #[error("{first} and {second} are both bound to {route}")]
    Collision { first: String, second: String, route: String },
}

/// Every route, most literal templates first.
pub struct RouteTable {
    pub pool: DescriptorPool,
    pub routes: Vec<Arc<Route>>,
}

impl RouteTable {
    /// Reads every binding of every `fabula.*` service of `pool`, as the services and
    /// methods declare them.
    pub fn from_pool(pool: DescriptorPool, settings: &Settings) -> Result<Self, RouteError> {
        let extension = |name: &'static str| pool.get_extension_by_name(name).ok_or(RouteError::Missing(name));
        let options = Extensions { http: extension(HTTP_RULE)?, auth: extension(AUTH_POLICY)?, rest: extension(REST)? };
        let upstream_option = extension(UPSTREAM)?;
        let mut routes = Vec::new();
        for service in pool.services().filter(|s| s.package_name().starts_with("fabula.")) {
            let upstream = match service.options().get_extension(&upstream_option).as_enum_number() {
                Some(n) => Upstream::try_from(n).unwrap_or(Upstream::Unspecified),
                None => Upstream::Unspecified,
            };
            if upstream == Upstream::Unspecified {
                return Err(RouteError::NoUpstream { service: service.full_name().into() });
            }
            for method in service.methods() {
                routes.extend(method_routes(&method, &options, upstream, settings)?);
            }
        }
        add_locations(&mut routes)?;
        let mut routes: Vec<Route> = routes.into_iter().map(|(route, _)| route).collect();
        refuse_collisions(&routes)?;
        routes.sort_by_key(|r| std::cmp::Reverse(literal_count(&r.template)));
        Ok(Self { pool, routes: routes.into_iter().map(Arc::new).collect() })
    }

    /// The (first) route of the gRPC method at `path`: `/package.Service/Method`.
    pub fn by_grpc_path(&self, path: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|route| route.grpc_path == path)
    }

    /// The route of `method` on `path`, with its variables percent-decoded. HEAD finds
    /// the GET route of the path (RFC 9110 §9.3.2), and a path with a GET allows HEAD.
    pub fn find(&self, method: &Method, path: &str) -> Found<'_> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let wanted = if method == Method::HEAD { &Method::GET } else { method };
        let mut allowed = Vec::new();
        for route in &self.routes {
            let Some(vars) = match_template(&route.template, &parts) else { continue };
            if route.http_method == *wanted {
                return Found::Route(route, vars);
            }
            if !allowed.contains(&route.http_method) {
                allowed.push(route.http_method.clone());
            }
        }
        if allowed.contains(&Method::GET) {
            allowed.push(Method::HEAD);
        }
        allowed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        if allowed.is_empty() { Found::Nothing } else { Found::WrongMethod(allowed) }
    }
}

/// The method options a route is made of.
struct Extensions {
    http: ExtensionDescriptor,
    auth: ExtensionDescriptor,
    rest: ExtensionDescriptor,
}

/// A route as its method declares it, before its `Location` template is found.
struct Declared {
    policy: AuthPolicy,
    upstream: Upstream,
    rest: RestOptions,
}

/// The routes of one method: its binding and its additional bindings, each with the
/// method its `Location` comes from (empty for none).
fn method_routes(
    method: &MethodDescriptor,
    options: &Extensions,
    upstream: Upstream,
    settings: &Settings,
) -> Result<Vec<(Route, String)>, RouteError> {
    let method_options = method.options();
    if !method_options.has_extension(&options.http) {
        return Ok(Vec::new());
    }
    let binding_error = |reason: String| RouteError::Binding { method: method.full_name().into(), reason };
    let policy = match method_options.get_extension(&options.auth).as_ref() {
        Value::EnumNumber(n) => AuthPolicy::try_from(*n).map_err(|_| binding_error(format!("unknown policy {n}")))?,
        _ => return Err(binding_error("no auth policy".into())),
    };
    let rest = match method_options.get_extension(&options.rest).as_ref() {
        Value::Message(rest) => rest.transcode_to::<RestOptions>().map_err(|e| binding_error(e.to_string()))?,
        _ => return Err(binding_error(format!("{REST} is not a message"))),
    };
    let Value::Message(rule) = method_options.get_extension(&options.http).into_owned() else {
        return Err(binding_error("google.api.http is not a message".into()));
    };
    let mut rules = vec![rule.clone()];
    if let Some(Value::List(more)) = rule.get_field_by_name("additional_bindings").map(|v| v.into_owned()) {
        rules.extend(more.into_iter().filter_map(|v| v.as_message().cloned()));
    }
    let declared = Declared { policy, upstream, rest };
    rules
        .iter()
        .map(|rule| route_of(method, rule, &declared, settings).map(|route| (route, declared.rest.location.clone())))
        .collect::<Result<_, _>>()
        .map_err(binding_error)
}

/// One binding of `method`.
fn route_of(
    method: &MethodDescriptor,
    rule: &DynamicMessage,
    declared: &Declared,
    settings: &Settings,
) -> Result<Route, String> {
    let (http_method, text) = verb_and_path(rule)?;
    if let Some(Value::String(field)) = rule.get_field_by_name("response_body").as_deref()
        && !field.is_empty()
    {
        return Err(format!("response_body ({field}) is not served: the answer is the whole response message"));
    }
    let template = parse_template(&text, &method.input())?;
    let body = body_rule(rule, &method.input())?;
    let rest = &declared.rest;
    let success = success_status(method, rest.success_status)?;
    let body_limit = if rest.large_body { settings.story_body_limit } else { settings.body_limit };
    let grpc_path = format!("/{}/{}", method.parent_service().full_name(), method.name());
    Ok(Route {
        name: format!("{http_method} {text}"),
        grpc_path: PathAndQuery::try_from(grpc_path).map_err(|e| e.to_string())?,
        success,
        method: method.clone(),
        http_method,
        template,
        body_required: is_required(&body),
        body,
        policy: declared.policy,
        upstream: declared.upstream,
        location: None,
        rate_class: rest.rate_class(),
        body_limit,
    })
}

/// The HTTP method and path template of a `HttpRule`.
fn verb_and_path(rule: &DynamicMessage) -> Result<(Method, String), String> {
    for (field, method) in [
        ("get", Method::GET),
        ("post", Method::POST),
        ("put", Method::PUT),
        ("patch", Method::PATCH),
        ("delete", Method::DELETE),
    ] {
        if let Some(Value::String(path)) = rule.get_field_by_name(field).as_deref()
            && !path.is_empty()
        {
            return Ok((method, path.clone()));
        }
    }
    Err("only get, post, put, patch and delete bindings are served (not custom)".into())
}

/// Parses `/v1/worlds/{world_id}/stories`, checking each variable names a field of `input`.
pub fn parse_template(text: &str, input: &MessageDescriptor) -> Result<Template, String> {
    let segments = text
        .trim_start_matches('/')
        .split('/')
        .map(|part| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(var) => {
                field_path(input, var)?;
                Ok(Segment::Variable(var.to_owned()))
            }
            None if part.contains(['{', '}', ':', '*']) => Err(format!("unsupported template segment {part:?}")),
            None => Ok(Segment::Literal(part.to_owned())),
        })
        .collect::<Result<_, String>>()?;
    Ok(Template { text: text.to_owned(), segments })
}

/// The fields along a dotted path of proto names.
pub fn field_path(message: &MessageDescriptor, path: &str) -> Result<Vec<FieldDescriptor>, String> {
    let mut fields = Vec::new();
    let mut current = message.clone();
    for name in path.split('.') {
        let field =
            current.get_field_by_name(name).ok_or_else(|| format!("{} has no field {name}", current.full_name()))?;
        if let Kind::Message(inner) = field.kind() {
            current = inner;
        }
        fields.push(field);
    }
    Ok(fields)
}

fn body_rule(rule: &DynamicMessage, input: &MessageDescriptor) -> Result<BodyRule, String> {
    match rule.get_field_by_name("body").as_deref() {
        Some(Value::String(body)) if body == "*" => Ok(BodyRule::Whole),
        Some(Value::String(body)) if !body.is_empty() => input
            .get_field_by_name(body)
            .map(BodyRule::Field)
            .ok_or_else(|| format!("the body field {body} does not exist")),
        _ => Ok(BodyRule::None),
    }
}

/// Whether `body` is a field declared `(google.api.field_behavior) = REQUIRED`.
fn is_required(body: &BodyRule) -> bool {
    let BodyRule::Field(field) = body else { return false };
    let Some(behavior) = field.parent_pool().get_extension_by_name(FIELD_BEHAVIOR) else { return false };
    let required = behavior.kind().as_enum().and_then(|e| e.get_value_by_name("REQUIRED")).map(|v| v.number());
    let options = field.options();
    options.has_extension(&behavior)
        && matches!(options.get_extension(&behavior).as_ref(),
            Value::List(values) if values.iter().any(|v| v.as_enum_number() == required))
}

/// The declared success status (200 when unset): a 2xx, and 204 only for a method
/// that answers nothing.
fn success_status(method: &MethodDescriptor, declared: u32) -> Result<StatusCode, String> {
    let status = match declared {
        0 => StatusCode::OK,
        code => u16::try_from(code)
            .ok()
            .and_then(|code| StatusCode::from_u16(code).ok())
            .filter(StatusCode::is_success)
            .ok_or_else(|| format!("success_status {declared} is not a 2xx status"))?,
    };
    if status == StatusCode::NO_CONTENT && method.output().full_name() != "google.protobuf.Empty" {
        return Err(format!(
            "success_status 204 answers no body, but the method returns {}",
            method.output().full_name()
        ));
    }
    Ok(status)
}

/// Refuses two bindings that one request would match alike: the same verb, and the
/// same literals and variables in the same places.
fn refuse_collisions(routes: &[Route]) -> Result<(), RouteError> {
    let shape = |route: &Route| -> (Method, Vec<Option<String>>) {
        let segments = route
            .template
            .segments
            .iter()
            .map(|segment| match segment {
                Segment::Literal(literal) => Some(literal.clone()),
                Segment::Variable(_) => None,
            })
            .collect();
        (route.http_method.clone(), segments)
    };
    for (i, first) in routes.iter().enumerate() {
        if let Some(second) = routes[i + 1..].iter().find(|second| shape(second) == shape(first)) {
            return Err(RouteError::Collision {
                first: first.method.full_name().into(),
                second: second.method.full_name().into(),
                route: first.name.clone(),
            });
        }
    }
    Ok(())
}

/// Gives each route whose method declares a `location` (the method's full name beside
/// the route) the template of that method's GET binding.
fn add_locations(routes: &mut [(Route, String)]) -> Result<(), RouteError> {
    let gets: Vec<(String, Template)> = routes
        .iter()
        .filter(|(r, _)| r.http_method == Method::GET)
        .map(|(r, _)| (r.method.full_name().to_owned(), r.template.clone()))
        .collect();
    for (route, location) in routes.iter_mut().filter(|(_, location)| !location.is_empty()) {
        let template = gets.iter().find(|(name, _)| name == location).map(|(_, t)| t.clone());
        route.location = Some(template.ok_or_else(|| RouteError::Binding {
            method: route.method.full_name().into(),
            reason: format!("its location {location} is no method with a GET binding"),
        })?);
    }
    Ok(())
}

fn literal_count(template: &Template) -> usize {
    template.segments.iter().filter(|s| matches!(s, Segment::Literal(_))).count()
}

/// The variables of `parts` under `template`, when it matches.
fn match_template(template: &Template, parts: &[&str]) -> Option<Vec<(String, String)>> {
    if template.segments.len() != parts.len() {
        return None;
    }
    let mut vars = Vec::new();
    for (segment, part) in template.segments.iter().zip(parts) {
        match segment {
            Segment::Literal(literal) if literal == part => {}
            Segment::Literal(_) => return None,
            Segment::Variable(_) if part.is_empty() => return None,
            Segment::Variable(name) => {
                let value = percent_decode(part)?;
                vars.push((name.clone(), value));
            }
        }
    }
    Some(vars)
}

/// `%2F` and friends decoded; `None` for a segment that is not UTF-8 once decoded.
fn percent_decode(part: &str) -> Option<String> {
    percent_encoding::percent_decode_str(part).decode_utf8().ok().map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        let pool = DescriptorPool::decode(fabula_contracts::FILE_DESCRIPTOR_SET).unwrap();
        let settings = Settings::for_tests("http://a", "http://b", "k".into());
        RouteTable::from_pool(pool, &settings).unwrap()
    }

    #[test]
    fn every_binding_becomes_a_route_with_the_declared_policy() {
        let table = table();
        assert!(table.routes.len() >= 45, "{} routes", table.routes.len());
        for route in &table.routes {
            let declared = fabula_runtime::auth::declared_policy(route.grpc_path.path());
            assert_eq!(Some(route.policy), declared, "{}", route.grpc_path);
        }
    }

    #[test]
    fn paths_find_their_routes_and_wrong_methods_are_told_apart() {
        let table = table();
        let Found::Route(route, vars) = table.find(&Method::PATCH, "/v1/stories/abc%20d") else { panic!("no route") };
        assert_eq!(route.method.name(), "UpdateStory");
        assert_eq!(vars, vec![("story.id".to_owned(), "abc d".to_owned())]);
        for method in [Method::GET, Method::HEAD] {
            let Found::Route(route, _) = table.find(&method, "/v1/users/me") else { panic!("no route") };
            assert_eq!(route.method.name(), "GetMe", "{method}");
        }
        let Found::WrongMethod(allowed) = table.find(&Method::PUT, "/v1/worlds") else { panic!("not a 405") };
        assert_eq!(allowed, [Method::GET, Method::HEAD, Method::POST]);
        let Found::WrongMethod(allowed) = table.find(&Method::HEAD, "/v1/auth/login") else { panic!("not a 405") };
        assert_eq!(allowed, [Method::POST], "HEAD only where there is a GET");
        assert!(matches!(table.find(&Method::GET, "/v1/nothing"), Found::Nothing));
        assert!(matches!(table.find(&Method::GET, "/v1/stories/"), Found::Nothing));
    }

    #[test]
    fn success_codes_and_locations_follow_the_method() {
        let table = table();
        let by_name = |name: &str| table.routes.iter().find(|r| r.method.name() == name).unwrap().clone();
        assert_eq!(by_name("CreateStory").success, StatusCode::CREATED);
        assert_eq!(by_name("CreateStory").location.as_ref().unwrap().text, "/v1/stories/{id}");
        assert_eq!(by_name("CreateStory").body_limit, 2 << 20);
        assert_eq!(by_name("CreateWorld").body_limit, 1 << 20);
        assert_eq!(by_name("CreateJob").success, StatusCode::ACCEPTED);
        assert_eq!(by_name("DeleteWorld").success, StatusCode::NO_CONTENT);
        assert_eq!(by_name("GetWorld").success, StatusCode::OK);
        assert_eq!(by_name("CreateJob").upstream, Upstream::GptWorker);
        assert_eq!(by_name("CreateJob").rate_class, RateClass::JobStart);
        assert_eq!(by_name("Login").rate_class, RateClass::SignIn);
        assert_eq!(by_name("GetWorld").upstream, Upstream::StoryService);
        assert_eq!(by_name("UnshareWorld").success, StatusCode::NO_CONTENT, "a DELETE that answers nothing");
        assert_eq!(by_name("ShareWorld").success, StatusCode::OK);
        assert!(by_name("UpdateWorld").body_required && by_name("CreateJob").body_required);
        assert!(!by_name("CancelJob").body_required, "body: \"*\" is the request, no field");
        assert!(!by_name("GetWorld").body_required);
    }

    /// The route table of the test contract `gateway/tests/contracts/notes.proto`, with
    /// `replace` replaced by `with`, compiled as the contracts are (protox, no protoc).
    fn notes_table(replace: &str, with: &str) -> Result<RouteTable, RouteError> {
        let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contracts");
        let proto = std::fs::read_to_string(tests.join("notes.proto")).unwrap();
        assert!(proto.contains(replace), "the contract holds {replace:?}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.proto"), proto.replace(replace, with)).unwrap();
        let contracts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/proto");
        let mut compiler = protox::Compiler::new([dir.path(), contracts.as_path()]).unwrap();
        compiler.include_imports(true);
        compiler.open_files(["notes.proto"]).unwrap_or_else(|e| panic!("the test contract compiles: {e}"));
        RouteTable::from_pool(compiler.descriptor_pool(), &Settings::for_tests("http://a", "http://b", "k".into()))
    }

    /// A change to the test contract, and what the gateway says of it.
    struct Contract {
        what: &'static str,
        replace: &'static str,
        with: &'static str,
        /// What the refusal says; `None` when the gateway serves the contract.
        refused: Option<&'static str>,
    }

    const BINDING: &str = r#"post: "/v1/notes" body: "note""#;
    const REST: &str = r#"option (fabula.options.v1.rest) = { success_status: 201 location: "fabula.test.v1.NoteService.GetNote" rate_class: JOB_START large_body: true };"#;

    #[test]
    fn a_service_is_served_as_its_contract_declares_or_refused_naming_it() {
        #[rustfmt::skip]
        let cases = [
            Contract { what: "as written", replace: "", with: "", refused: None },
            Contract { what: "no upstream", replace: "option (fabula.options.v1.upstream) = GPT_WORKER;", with: "", refused: Some("fabula.test.v1.NoteService declares no upstream") },
            Contract { what: "a response_body", replace: BINDING, with: r#"post: "/v1/notes" body: "note" response_body: "text""#, refused: Some("fabula.test.v1.NoteService.CreateNote: response_body (text) is not served") },
            Contract { what: "a custom verb", replace: BINDING, with: r#"custom: { kind: "SEARCH" path: "/v1/notes" }"#, refused: Some("CreateNote: only get, post, put, patch and delete bindings are served") },
            Contract { what: "two methods on one route", replace: "  rpc CreateNote(", with: r#"  rpc FindNote(CreateNoteRequest) returns (Note) { option (google.api.http) = { get: "/v1/notes/{note.text}" }; option (fabula.options.v1.auth_policy) = PUBLIC; }
  rpc CreateNote("#, refused: Some("are both bound to GET /v1/notes/{") },
            Contract { what: "a success that is no 2xx", replace: REST, with: "option (fabula.options.v1.rest) = { success_status: 302 };", refused: Some("CreateNote: success_status 302 is not a 2xx status") },
            Contract { what: "204 with an answer", replace: REST, with: "option (fabula.options.v1.rest) = { success_status: 204 };", refused: Some("CreateNote: success_status 204 answers no body") },
            Contract { what: "a location that is no GET", replace: REST, with: r#"option (fabula.options.v1.rest) = { location: "fabula.test.v1.NoteService.CreateNote" };"#, refused: Some("CreateNote: its location fabula.test.v1.NoteService.CreateNote is no method with a GET binding") },
        ];
        for case in cases {
            match (notes_table(case.replace, case.with), case.refused) {
                (Ok(table), None) => {
                    let create = table.routes.iter().find(|r| r.method.name() == "CreateNote").expect("CreateNote");
                    assert_eq!(create.success, StatusCode::CREATED, "{}", case.what);
                    assert_eq!(create.location.as_ref().map(|t| t.text.as_str()), Some("/v1/notes/{id}"));
                    assert_eq!((create.upstream, create.rate_class), (Upstream::GptWorker, RateClass::JobStart));
                    assert_eq!((create.policy, create.body_limit), (AuthPolicy::User, 2 << 20), "a large body");
                    let get = table.routes.iter().find(|r| r.method.name() == "GetNote").expect("GetNote");
                    assert_eq!(
                        (get.success, get.rate_class, get.body_limit),
                        (StatusCode::OK, RateClass::Unspecified, 1 << 20)
                    );
                }
                (Err(error), Some(says)) => assert!(error.to_string().contains(says), "{}: {error}", case.what),
                (Ok(_), Some(says)) => panic!("{}: served, but should be refused with {says:?}", case.what),
                (Err(error), None) => panic!("{}: refused: {error}", case.what),
            }
        }
    }
}
