//! The route table: every Fabula method with a `google.api.http` binding, read once
//! at start-up from the descriptor pool, and the matcher that finds a request's route.
//! No route is written by hand: a new RPC with a binding appears here by itself.

use std::sync::Arc;

use fabula_runtime::auth::AuthPolicy;
use http::{Method, StatusCode, uri::PathAndQuery};
use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    ServiceDescriptor, Value,
};

use crate::config::Settings;

/// The extension that carries a method's REST binding.
const HTTP_RULE: &str = "google.api.http";
/// The extension that carries a method's auth policy.
const AUTH_POLICY: &str = "fabula.options.v1.auth_policy";
/// The extension that marks a field's behaviour (REQUIRED, OUTPUT_ONLY…).
const FIELD_BEHAVIOR: &str = "google.api.field_behavior";
/// The message whose content earns the larger body limit.
const STORY_MESSAGE: &str = "fabula.story.v1.Story";

/// Which service answers a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upstream {
    Story,
    Worker,
}

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
}

/// Every route, most literal templates first.
pub struct RouteTable {
    pub pool: DescriptorPool,
    pub routes: Vec<Arc<Route>>,
}

impl RouteTable {
    /// Reads every binding of every `fabula.*` service of `pool`.
    pub fn from_pool(pool: DescriptorPool, settings: &Settings) -> Result<Self, RouteError> {
        let http = pool.get_extension_by_name(HTTP_RULE).ok_or(RouteError::Missing(HTTP_RULE))?;
        let auth = pool.get_extension_by_name(AUTH_POLICY).ok_or(RouteError::Missing(AUTH_POLICY))?;
        let mut routes = Vec::new();
        for service in pool.services().filter(|s| s.package_name().starts_with("fabula.")) {
            for method in service.methods() {
                routes.extend(method_routes(&method, &http, &auth, settings)?);
            }
        }
        let mut routes: Vec<Route> = routes;
        add_locations(&mut routes);
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

/// The routes of one method: its binding and its additional bindings.
fn method_routes(
    method: &MethodDescriptor,
    http: &ExtensionDescriptor,
    auth: &ExtensionDescriptor,
    settings: &Settings,
) -> Result<Vec<Route>, RouteError> {
    let options = method.options();
    if !options.has_extension(http) {
        return Ok(Vec::new());
    }
    let binding_error = |reason: String| RouteError::Binding { method: method.full_name().into(), reason };
    let policy = match options.get_extension(auth).as_ref() {
        Value::EnumNumber(n) => AuthPolicy::try_from(*n).map_err(|_| binding_error(format!("unknown policy {n}")))?,
        _ => return Err(binding_error("no auth policy".into())),
    };
    let Value::Message(rule) = options.get_extension(http).into_owned() else {
        return Err(binding_error("google.api.http is not a message".into()));
    };
    let mut rules = vec![rule.clone()];
    if let Some(Value::List(more)) = rule.get_field_by_name("additional_bindings").map(|v| v.into_owned()) {
        rules.extend(more.into_iter().filter_map(|v| v.as_message().cloned()));
    }
    rules.iter().map(|rule| route_of(method, rule, policy, settings).map_err(binding_error)).collect()
}

/// One binding of `method`.
fn route_of(
    method: &MethodDescriptor,
    rule: &DynamicMessage,
    policy: AuthPolicy,
    settings: &Settings,
) -> Result<Route, String> {
    let (http_method, text) = verb_and_path(rule)?;
    let template = parse_template(&text, &method.input())?;
    let body = body_rule(rule, &method.input())?;
    let service = method.parent_service();
    let upstream = if service.package_name().starts_with("fabula.jobs.") { Upstream::Worker } else { Upstream::Story };
    let body_limit =
        if carries(&body, &method.input(), STORY_MESSAGE) { settings.story_body_limit } else { settings.body_limit };
    let grpc_path = format!("/{}/{}", service.full_name(), method.name());
    Ok(Route {
        name: format!("{http_method} {text}"),
        grpc_path: PathAndQuery::try_from(grpc_path).map_err(|e| e.to_string())?,
        success: success_status(method, service, &http_method),
        method: method.clone(),
        http_method,
        template,
        body_required: is_required(&body),
        body,
        policy,
        upstream,
        location: None,
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
    Err("only get, post, put, patch and delete bindings are supported".into())
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

/// Whether the body of a route holds a `message`.
fn carries(body: &BodyRule, input: &MessageDescriptor, message: &str) -> bool {
    let is = |kind: Kind| matches!(kind, Kind::Message(m) if m.full_name() == message);
    match body {
        BodyRule::None => false,
        BodyRule::Whole => input.fields().any(|f| is(f.kind())),
        BodyRule::Field(field) => is(field.kind()),
    }
}

/// 201 for a create, 202 for a create that starts a long-running operation (its
/// service can be waited on), 204 for a delete (or any DELETE that returns nothing),
/// 200 otherwise.
fn success_status(method: &MethodDescriptor, service: &ServiceDescriptor, http_method: &Method) -> StatusCode {
    let name = method.name();
    let returns_nothing = method.output().full_name() == "google.protobuf.Empty";
    let is_operation = service.methods().any(|m| m.name().starts_with("Wait") || m.name().starts_with("Watch"));
    match () {
        () if name.starts_with("Create") && is_operation => StatusCode::ACCEPTED,
        () if name.starts_with("Create") => StatusCode::CREATED,
        () if name.starts_with("Delete") || (*http_method == Method::DELETE && returns_nothing) => {
            StatusCode::NO_CONTENT
        }
        () => StatusCode::OK,
    }
}

/// Gives each `Create<X>` route the template of the `Get<X>` route of its service.
fn add_locations(routes: &mut [Route]) {
    let gets: Vec<(String, Template)> = routes
        .iter()
        .filter(|r| r.http_method == Method::GET && r.method.name().starts_with("Get"))
        .map(|r| (r.method.full_name().to_owned(), r.template.clone()))
        .collect();
    for route in routes.iter_mut().filter(|r| r.method.name().starts_with("Create")) {
        let get = route.method.full_name().replacen(".Create", ".Get", 1);
        route.location = gets.iter().find(|(name, _)| *name == get).map(|(_, t)| t.clone());
    }
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
        assert_eq!(by_name("CreateJob").upstream, Upstream::Worker);
        assert!(by_name("UpdateWorld").body_required && by_name("CreateJob").body_required);
        assert!(!by_name("CancelJob").body_required, "body: \"*\" is the request, no field");
        assert!(!by_name("GetWorld").body_required);
    }
}
