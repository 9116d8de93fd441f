//! `GET /openapi.json`: the OpenAPI 3.1 document of every route, generated at start-up
//! from the same route table and descriptors the gateway serves with, and kept as bytes.
//!
//! Schemas follow the proto3 JSON mapping the gateway speaks: lowerCamelCase
//! properties, 64-bit integers as strings or numbers, enums by name or number, the
//! well-known types in their JSON forms, no property a message does not have, a
//! oneof as alternatives. Summaries and descriptions are the contracts' comments;
//! `google.api.field_behavior` gives `required` (REQUIRED) and `readOnly`
//! (OUTPUT_ONLY); each field's declared rules (`fabula.options.v1.rules`) give its
//! lengths, pattern, format, item counts and bounds, the very rules the services and
//! the gateway enforce; each method's auth policy gives its security.

use std::collections::{BTreeMap, HashSet};

use axum::routing::{MethodRouter, get};
use bytes::Bytes;
use fabula_runtime::{
    auth::AuthPolicy,
    rules::{self, Rule, TextKind},
};
use http::{StatusCode, header};
use prost_reflect::{
    ExtensionDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor, OneofDescriptor, Value as ProtoValue,
};
use serde_json::{Map, Value, json};
use tonic::Code;

use crate::{
    errors::mapping,
    patch,
    routes::{BodyRule, Route, RouteTable, Segment, Template},
};

/// The extension that carries a field's behaviour.
const FIELD_BEHAVIOR: &str = "google.api.field_behavior";
/// The extension that marks a oneof of which one member must be set.
const ONEOF_REQUIRED: &str = "fabula.options.v1.oneof_required";
/// `google.api.FieldBehavior` numbers the document uses.
const REQUIRED: i32 = 2;
const OUTPUT_ONLY: i32 = 3;
/// How deep nested request fields are flattened into query parameters.
const MAX_QUERY_DEPTH: usize = 3;
/// Error statuses every operation documents, beside `default`.
const ERROR_STATUSES: [(u16, &str); 6] = [
    (400, "The request is invalid: a field, the JSON or a precondition."),
    (401, "The access token is missing, malformed or expired."),
    (403, "The caller may not do this."),
    (404, "The resource does not exist, or the caller may not see it."),
    (429, "Too many requests; `Retry-After` says when to come back."),
    (503, "A service is unavailable; try again."),
];

/// `GET /openapi.json`, the document built once from `table`.
pub fn route<S: Clone + Send + Sync + 'static>(table: &RouteTable) -> MethodRouter<S> {
    let body = Bytes::from(document(table).to_string());
    get(move || {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], body) }
    })
}

/// The OpenAPI document of every route of `table`.
pub fn document(table: &RouteTable) -> Value {
    let mut builder = Builder::new(table);
    let mut paths = BTreeMap::<String, Map<String, Value>>::new();
    let mut ids = HashSet::new();
    for route in &table.routes {
        let operation = builder.operation(route, &mut ids);
        let method = route.http_method.as_str().to_ascii_lowercase();
        paths.entry(openapi_path(&route.template)).or_default().insert(method, operation);
    }
    paths.insert("/v1/auth/watch-cookie".into(), watch_cookie_path());
    paths.extend(operations_paths());
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "Fabula API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Fabula's REST/JSON API, transcoded by the gateway to the gRPC services. \
                Bodies use the proto3 JSON mapping; errors are `{\"error\": {code, status, message, details}}`.",
        },
        "servers": [{"url": "/"}],
        "tags": builder.tags(table),
        "paths": paths,
        "components": builder.components(),
    })
}

/// The document's path of `template`: each variable named by its last part, so that
/// `/v1/stories/{story.id}` and `/v1/stories/{id}` are the one path OpenAPI wants.
pub fn openapi_path(template: &Template) -> String {
    let parts = template.segments.iter().map(|segment| match segment {
        Segment::Literal(literal) => literal.clone(),
        Segment::Variable(path) => format!("{{{}}}", parameter_name(path)),
    });
    parts.fold(String::new(), |path, part| path + "/" + &part)
}

/// A path variable's name in the document: the last part of its field path.
fn parameter_name(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// `/v1/auth/watch-cookie`, which the gateway answers itself.
fn watch_cookie_path() -> Map<String, Value> {
    let operation = json!({
        "operationId": "CreateWatchCookie",
        "tags": ["Gateway"],
        "summary": "Puts the caller's access token in the HttpOnly cookie event streams accept.",
        "description": "Browsers cannot send an `Authorization` header with an `EventSource`; \
            the `fabula_watch` cookie, limited to `/v1/jobs/`, carries the token instead.",
        "security": [{"bearer": []}],
        "responses": {
            "204": {"description": "The cookie is set.", "headers": {"Set-Cookie": {"schema": {"type": "string"}}}},
            "400": {"$ref": "#/components/responses/400"},
            "401": {"$ref": "#/components/responses/401"},
            "default": {"$ref": "#/components/responses/default"},
        },
    });
    let delete = json!({
        "operationId": "DeleteWatchCookie",
        "tags": ["Gateway"],
        "summary": "Removes the watch cookie, at sign-out.",
        "security": [],
        "responses": {"204": {"description": "The cookie is removed."}},
    });
    Map::from_iter([("post".to_owned(), operation), ("delete".to_owned(), delete)])
}

/// `/healthz`, `/readyz` and `/metrics`, which the gateway answers itself.
fn operations_paths() -> [(String, Map<String, Value>); 3] {
    let get = |id: &str, summary: &str, responses: Value| {
        let operation = json!({"operationId": id, "tags": ["Operations"], "summary": summary, "responses": responses});
        Map::from_iter([("get".to_owned(), operation)])
    };
    let text = |description: &str| json!({"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}});
    let upstreams = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let statuses =
        |description: &str| json!({"description": description, "content": {"application/json": {"schema": upstreams}}});
    [
        (
            "/healthz".into(),
            get("Healthz", "Whether the gateway process is up.", json!({"200": statuses("The process is up.")})),
        ),
        (
            "/readyz".into(),
            get(
                "Readyz",
                "Whether story-service and gpt-worker answer SERVING on grpc.health.v1.",
                json!({"200": statuses("Both services are ready."), "503": statuses("A service is not ready.")}),
            ),
        ),
        (
            "/metrics".into(),
            get(
                "Metrics",
                "Requests, latencies and upstream errors in the Prometheus text format.",
                json!({"200": text("The metrics.")}),
            ),
        ),
    ]
}

/// Walks the descriptors, collecting the component schemas the operations refer to.
struct Builder {
    behavior: Option<ExtensionDescriptor>,
    oneof_required: Option<ExtensionDescriptor>,
    schemas: BTreeMap<String, Value>,
    pending: Vec<MessageDescriptor>,
}

impl Builder {
    fn new(table: &RouteTable) -> Self {
        Self {
            behavior: table.pool.get_extension_by_name(FIELD_BEHAVIOR),
            oneof_required: table.pool.get_extension_by_name(ONEOF_REQUIRED),
            schemas: BTreeMap::new(),
            pending: vec![],
        }
    }

    /// One operation: its names, parameters, body, responses and security.
    fn operation(&mut self, route: &Route, ids: &mut HashSet<String>) -> Value {
        let method = &route.method;
        let (summary, description) = summary_and_description(comments(&method.parent_file(), method.path()));
        let mut operation = json!({
            "operationId": unique_id(method.name(), ids),
            "tags": [method.parent_service().name()],
            "summary": summary.unwrap_or_else(|| method.name().to_owned()),
            "parameters": self.parameters(route),
            "responses": self.responses(route),
            "security": security(route.policy),
        });
        if let Some(description) = description {
            operation["description"] = description.into();
        }
        if let Some(body) = self.request_body(route) {
            operation["requestBody"] = body;
        }
        operation
    }

    /// The path variables, then the query parameters.
    fn parameters(&mut self, route: &Route) -> Vec<Value> {
        let input = route.method.input();
        let mut parameters = Vec::new();
        let mut bound = HashSet::new();
        for segment in &route.template.segments {
            let Segment::Variable(path) = segment else { continue };
            let Ok(fields) = crate::routes::field_path(&input, path) else { continue };
            let Some(field) = fields.last() else { continue };
            let name = parameter_name(path);
            let mut parameter =
                json!({"name": name, "in": "path", "required": true, "schema": self.field_schema(field)});
            if let Some(text) = field_comment(field) {
                parameter["description"] = text.into();
            }
            parameters.push(parameter);
            bound.insert(path.clone());
        }
        if let BodyRule::Whole = route.body {
            return parameters;
        }
        if let BodyRule::Field(field) = &route.body {
            bound.insert(field.name().to_owned());
        }
        if patch::updatable(route).is_some() {
            // An update's mask is made from its body.
            bound.insert("update_mask".to_owned());
        }
        self.query_parameters(&input, ("", ""), &bound, 0, &mut parameters);
        parameters
    }

    /// The fields of `message` a query string can set, flattened with dots; `prefix`
    /// is the (proto, JSON) path of `message` within the request.
    fn query_parameters(
        &mut self,
        message: &MessageDescriptor,
        prefix: (&str, &str),
        bound: &HashSet<String>,
        depth: usize,
        out: &mut Vec<Value>,
    ) {
        for field in message.fields() {
            let proto = format!("{}{}", prefix.0, field.name());
            let name = format!("{}{}", prefix.1, field.json_name());
            if bound.contains(&proto) || field.is_map() || self.has_behavior(&field, OUTPUT_ONLY) {
                continue;
            }
            match field.kind() {
                Kind::Message(inner) if !is_string_message(&inner) => {
                    if depth < MAX_QUERY_DEPTH && !field.is_list() {
                        let prefix = (format!("{proto}."), format!("{name}."));
                        self.query_parameters(&inner, (&prefix.0, &prefix.1), bound, depth + 1, out);
                    }
                }
                _ => out.push(self.query_parameter(&field, name)),
            }
        }
    }

    fn query_parameter(&mut self, field: &FieldDescriptor, name: String) -> Value {
        let required = self.has_behavior(field, REQUIRED);
        let mut parameter =
            json!({"name": name, "in": "query", "required": required, "schema": self.field_schema(field)});
        if field.is_list() {
            parameter["style"] = "form".into();
            parameter["explode"] = true.into();
        }
        if let Some(text) = field_comment(field) {
            parameter["description"] = text.into();
        }
        parameter
    }

    /// The body field's schema, or the request without its path fields for `body: "*"`.
    fn request_body(&mut self, route: &Route) -> Option<Value> {
        let schema = match &route.body {
            BodyRule::None => return None,
            BodyRule::Field(field) if let Some((_, paths)) = patch::updatable(route) => {
                let mut schema = self.partial_schema(field, paths);
                leave_out_path_fields(&mut schema, field.name(), &route.template);
                let description = "The fields to change, and only those: a merge patch (RFC 7396). \
                    `null` clears a message field. The `etag` read makes the change conditional.";
                return Some(json!({
                    "required": true,
                    "description": description,
                    "content": {"application/json": {"schema": schema}},
                }));
            }
            BodyRule::Field(field) => self.field_schema(field),
            BodyRule::Whole => self.whole_body_schema(route),
        };
        // A body may be left out where the gateway takes none as `{}`: a whole request
        // with no required field, or a body field that is not required.
        let required = match &route.body {
            BodyRule::Whole => schema["required"].as_array().is_some_and(|fields| !fields.is_empty()),
            _ => route.body_required,
        };
        Some(json!({"required": required, "content": {"application/json": {"schema": schema}}}))
    }

    /// The body of an update: the resource with none of its fields required, since
    /// only those present change, and `null` for each message field it may clear.
    fn partial_schema(&mut self, field: &FieldDescriptor, paths: &[&str]) -> Value {
        let Kind::Message(message) = field.kind() else { return self.field_schema(field) };
        if well_known(&message).is_some() {
            return self.field_schema(field);
        }
        let mut schema = self.message_schema(&message);
        if let Some(object) = schema.as_object_mut() {
            object.remove("required");
        }
        let clearable = message.fields().filter(|f| {
            matches!(f.kind(), Kind::Message(_)) && !f.is_list() && !f.is_map() && paths.contains(&f.name())
        });
        for field in clearable {
            if let Some(property) = schema["properties"].get_mut(field.json_name()) {
                *property = json!({"anyOf": [property.take(), {"type": "null"}]});
            }
        }
        schema
    }

    fn whole_body_schema(&mut self, route: &Route) -> Value {
        let mut schema = self.message_schema(&route.method.input());
        for segment in &route.template.segments {
            let Segment::Variable(path) = segment else { continue };
            let Some(field) = route.method.input().get_field_by_name(path) else { continue };
            if let Some(properties) = schema["properties"].as_object_mut() {
                properties.remove(field.json_name());
            }
            if let Some(required) = schema["required"].as_array_mut() {
                required.retain(|name| name != field.json_name());
            }
        }
        if schema["required"].as_array().is_some_and(Vec::is_empty) {
            schema.as_object_mut().map(|o| o.remove("required"));
        }
        schema
    }

    /// The success answer as the gateway gives it, and the error answers.
    fn responses(&mut self, route: &Route) -> Value {
        let mut responses = Map::new();
        responses.insert(route.success.as_str().to_owned(), self.success(route));
        for (status, _) in ERROR_STATUSES {
            if route.policy != AuthPolicy::Public || !matches!(status, 401 | 403) {
                responses.insert(status.to_string(), json!({"$ref": format!("#/components/responses/{status}")}));
            }
        }
        responses.insert("default".into(), json!({"$ref": "#/components/responses/default"}));
        Value::Object(responses)
    }

    fn success(&mut self, route: &Route) -> Value {
        let output = self.message_ref(&route.method.output());
        if route.success == StatusCode::NO_CONTENT {
            return json!({"description": "Done; nothing to return."});
        }
        if route.method.is_server_streaming() {
            return stream_response(output);
        }
        let mut response = json!({
            "description": reason_phrase(route.success),
            "content": {"application/json": {"schema": output}},
        });
        if route.location.is_some() {
            let location = json!({"description": "The path of the created resource.", "schema": {"type": "string"}});
            response["headers"] = json!({"Location": location});
        }
        response
    }

    /// The schema of a field's JSON value (a map, a list or one value) with what its
    /// declared rule says of it.
    fn field_schema(&mut self, field: &FieldDescriptor) -> Value {
        let rule = rules::declared(field.full_name());
        if let Kind::Message(entry) = field.kind()
            && field.is_map()
        {
            let value_kind = entry.map_entry_value_field().kind();
            let value = constrained(self.kind_schema(&value_kind), &value_kind, rule);
            let mut schema = json!({"type": "object", "additionalProperties": value});
            if let Some(rule) = rule {
                schema["propertyNames"] = key_schema(rule);
                if rule.max_items > 0 {
                    schema["maxProperties"] = rule.max_items.into();
                }
            }
            return schema;
        }
        let item = constrained(self.kind_schema(&field.kind()), &field.kind(), rule);
        if !field.is_list() {
            return item;
        }
        let mut schema = json!({"type": "array", "items": item});
        if self.has_behavior(field, REQUIRED) {
            schema["minItems"] = 1.into();
        }
        if let Some(rule) = rule {
            if rule.max_items > 0 {
                schema["maxItems"] = rule.max_items.into();
            }
            if rule.unique_items {
                schema["uniqueItems"] = true.into();
            }
        }
        schema
    }

    fn kind_schema(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Double | Kind::Float => json!({"type": "number"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32", "minimum": i32::MIN, "maximum": i32::MAX})
            }
            Kind::Uint32 | Kind::Fixed32 => json!({"type": "integer", "minimum": 0, "maximum": u32::MAX}),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!({
                "type": ["string", "integer"],
                "format": "int64",
                "pattern": integer_pattern(i64::MIN, i64::MAX.unsigned_abs()),
                "minimum": i64::MIN,
                "maximum": i64::MAX,
            }),
            Kind::Uint64 | Kind::Fixed64 => json!({
                "type": ["string", "integer"],
                "format": "uint64",
                "pattern": integer_pattern(0, u64::MAX),
                "minimum": 0,
                "maximum": u64::MAX,
            }),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::String => json!({"type": "string"}),
            Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
            Kind::Enum(e) => {
                // The JSON mapping takes a value's name or its number.
                let names = e.values().map(|v| Value::from(v.name()));
                let numbers = e.values().map(|v| Value::from(v.number()));
                let mut schema =
                    json!({"type": ["string", "integer"], "enum": names.chain(numbers).collect::<Vec<_>>()});
                if let Some(text) = comments(&e.parent_file(), e.path()) {
                    schema["description"] = text.into();
                }
                schema
            }
            Kind::Message(message) => self.message_ref(message),
        }
    }

    /// A well-known type inline, any other message by reference (built later).
    fn message_ref(&mut self, message: &MessageDescriptor) -> Value {
        if let Some(schema) = well_known(message) {
            return schema;
        }
        let name = message.full_name().to_owned();
        if !self.schemas.contains_key(&name) && !self.pending.iter().any(|m| m.full_name() == name) {
            self.pending.push(message.clone());
        }
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    /// An object with a property per field and no other. A oneof's members are
    /// alternatives: at most one of them, exactly one when the oneof is required.
    fn message_schema(&mut self, message: &MessageDescriptor) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in message.fields() {
            let mut schema = self.field_schema(&field);
            let output_only = self.has_behavior(&field, OUTPUT_ONLY);
            if output_only {
                schema["readOnly"] = true.into();
            } else if self.has_behavior(&field, REQUIRED) {
                required.push(field.json_name().to_owned());
            }
            if let Some(text) = field_comment(&field) {
                schema["description"] = text.into();
            }
            properties.insert(field.json_name().to_owned(), schema);
        }
        let mut schema = json!({"type": "object", "properties": properties, "additionalProperties": false});
        if !required.is_empty() {
            schema["required"] = required.into();
        }
        let choices: Vec<Value> = message.oneofs().filter(|o| !o.is_synthetic()).map(|o| self.choice(&o)).collect();
        match choices.len() {
            0 => {}
            1 => schema["oneOf"] = choices.into_iter().next().unwrap_or_default(),
            _ => schema["allOf"] = choices.into_iter().map(|c| json!({"oneOf": c})).collect(),
        }
        if let Some(text) = comments(&message.parent_file(), message.path()) {
            schema["description"] = text.into();
        }
        schema
    }

    /// The alternatives of a oneof: each member alone, and none of them unless the
    /// oneof is required.
    fn choice(&self, oneof: &OneofDescriptor) -> Value {
        let members: Vec<String> = oneof.fields().map(|f| f.json_name().to_owned()).collect();
        let mut alternatives: Vec<Value> = members
            .iter()
            .map(|member| {
                let others: Vec<Value> =
                    members.iter().filter(|m| *m != member).map(|m| json!({"required": [m]})).collect();
                // A oneof of one member has no others to exclude (and `anyOf` must not be empty).
                if others.is_empty() {
                    json!({"required": [member]})
                } else {
                    json!({"required": [member], "not": {"anyOf": others}})
                }
            })
            .collect();
        let required = self.oneof_required.as_ref().is_some_and(|extension| {
            let options = oneof.options();
            options.has_extension(extension) && options.get_extension(extension).as_bool() == Some(true)
        });
        if !required {
            let any: Vec<Value> = members.iter().map(|m| json!({"required": [m]})).collect();
            alternatives.push(json!({"not": {"anyOf": any}}));
        }
        Value::Array(alternatives)
    }

    /// Whether `field` declares the `google.api.field_behavior` numbered `behavior`.
    fn has_behavior(&self, field: &FieldDescriptor, behavior: i32) -> bool {
        let Some(extension) = &self.behavior else { return false };
        let options = field.options();
        if !options.has_extension(extension) {
            return false;
        }
        match options.get_extension(extension).as_ref() {
            ProtoValue::List(values) => values.iter().any(|v| v.as_enum_number() == Some(behavior)),
            ProtoValue::EnumNumber(n) => *n == behavior,
            _ => false,
        }
    }

    /// Each service as a tag described by its comment, and the gateway's own.
    fn tags(&self, table: &RouteTable) -> Vec<Value> {
        let mut seen = HashSet::new();
        let mut tags: Vec<Value> = table
            .routes
            .iter()
            .map(|r| r.method.parent_service())
            .filter(|s| seen.insert(s.full_name().to_owned()))
            .map(|s| {
                let mut tag = json!({"name": s.name()});
                if let Some(text) = comments(&s.parent_file(), s.path()) {
                    tag["description"] = text.into();
                }
                tag
            })
            .collect();
        tags.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        tags.push(json!({"name": "Gateway", "description": "Routes the gateway answers itself."}));
        tags.push(json!({"name": "Operations", "description": "Health, readiness and metrics, for operators."}));
        tags
    }

    /// Every message schema referred to, the error schemas and responses, and the
    /// bearer scheme.
    fn components(mut self) -> Value {
        while let Some(message) = self.pending.pop() {
            let schema = self.message_schema(&message);
            self.schemas.insert(message.full_name().to_owned(), schema);
        }
        self.schemas.insert("Error".into(), error_schema());
        self.schemas.insert("Status".into(), status_schema());
        let mut responses: Map<String, Value> =
            ERROR_STATUSES.iter().map(|(status, text)| (status.to_string(), error_response(text))).collect();
        responses.insert("default".into(), error_response("Any other error, in the same shape."));
        json!({
            "schemas": self.schemas,
            "responses": responses,
            "securitySchemes": {"bearer": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "An access token from `/v1/auth/register`, `/v1/auth/login` or `/v1/auth/refresh`.",
            }},
        })
    }
}

/// Takes out of the schema of the body field `body` the properties the path sets
/// (`{story.id}` sets the story's `id`): a body may not set them again.
fn leave_out_path_fields(schema: &mut Value, body: &str, template: &Template) {
    for segment in &template.segments {
        let Segment::Variable(path) = segment else { continue };
        let Some(inner) = path.strip_prefix(body).and_then(|p| p.strip_prefix('.')) else { continue };
        if let Some(properties) = schema["properties"].as_object_mut() {
            properties.remove(&rules::lower_camel(inner));
        }
    }
}

/// `name`, or `name2`, `name3`… when another binding of the method took it.
fn unique_id(name: &str, ids: &mut HashSet<String>) -> String {
    let id = (1..).map(|n| if n == 1 { name.to_owned() } else { format!("{name}{n}") }).find(|id| !ids.contains(id));
    let id = id.unwrap_or_else(|| name.to_owned());
    ids.insert(id.clone());
    id
}

/// PUBLIC: none; OPTIONAL: none or bearer; USER and ADMIN: bearer.
fn security(policy: AuthPolicy) -> Value {
    match policy {
        AuthPolicy::Public => json!([]),
        AuthPolicy::Optional => json!([{}, {"bearer": []}]),
        _ => json!([{"bearer": []}]),
    }
}

/// A server-streaming answer: Server-Sent Events, or NDJSON lines of `{"result": …}`
/// or an error.
fn stream_response(update: Value) -> Value {
    json!({
        "description": "The updates as they happen. With `Accept: text/event-stream`, Server-Sent Events: \
            `update` events whose data is an update and whose id resumes the stream (`Last-Event-ID`), \
            and an `error` event ending it. Otherwise NDJSON: a line per update, `{\"result\": …}`, \
            or an error line.",
        "content": {
            "text/event-stream": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {
                "type": "object",
                "properties": {"result": update, "error": {"$ref": "#/components/schemas/Status"}},
            }},
        },
    })
}

fn reason_phrase(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Success").to_owned()
}

/// The JSON schema of a well-known type, which the JSON mapping writes specially.
fn well_known(message: &MessageDescriptor) -> Option<Value> {
    let schema = match message.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => json!({"type": "string", "pattern": "^-?[0-9]{1,12}(\\.[0-9]{1,9})?s$"}),
        "google.protobuf.FieldMask" => json!({"type": "string", "description": "Comma-separated field paths."}),
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.Struct" => json!({"type": "object", "additionalProperties": true}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({"type": "array"}),
        "google.protobuf.Any" => {
            json!({"type": "object", "required": ["@type"], "properties": {"@type": {"type": "string"}}})
        }
        name if name.starts_with("google.protobuf.") && name.ends_with("Value") => {
            let value = message.get_field_by_name("value")?;
            let mut schema = Builder::scalar_only(&value.kind())?;
            schema["type"] = json!([schema["type"].clone(), "null"]);
            schema
        }
        _ => return None,
    };
    Some(schema)
}

impl Builder {
    /// The schema of a scalar kind, without a builder (for the wrapper types).
    fn scalar_only(kind: &Kind) -> Option<Value> {
        if matches!(kind, Kind::Message(_) | Kind::Enum(_)) {
            return None;
        }
        let mut builder = Self { behavior: None, oneof_required: None, schemas: BTreeMap::new(), pending: vec![] };
        Some(builder.kind_schema(kind))
    }
}

/// Timestamps, durations and field masks: messages written as one JSON string.
fn is_string_message(message: &MessageDescriptor) -> bool {
    matches!(
        message.full_name(),
        "google.protobuf.Timestamp" | "google.protobuf.Duration" | "google.protobuf.FieldMask"
    )
}

/// The error body every failure answers with.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"$ref": "#/components/schemas/Status"}},
    })
}

/// The inside of an error body: `google.rpc.Status` as the gateway writes it.
fn status_schema() -> Value {
    let names: Vec<&str> = (0..=16).map(|n| mapping(Code::from_i32(n)).1).collect();
    json!({
        "type": "object",
        "required": ["code", "status", "message"],
        "properties": {
            "code": {"type": "integer", "description": "The HTTP status."},
            "status": {"type": "string", "enum": names, "description": "The gRPC status name."},
            "message": {"type": "string"},
            "details": {"type": "array", "items": {
                "type": "object",
                "required": ["@type"],
                "properties": {"@type": {"type": "string"}},
                "description": "A google.rpc detail: ErrorInfo, BadRequest, RetryInfo…",
            }},
        },
    })
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    })
}

/// `schema` (of a value of `kind`) with what `rule` declares of it: a string's
/// lengths, pattern and format, an integer's bounds, a field mask's paths, a
/// duration's range.
fn constrained(mut schema: Value, kind: &Kind, rule: Option<&Rule>) -> Value {
    let Some(rule) = rule else { return schema };
    match kind {
        Kind::String => {
            if rule.min_length > 0 {
                schema["minLength"] = rule.min_length.into();
            }
            let max = if rule.max_length > 0 { rule.max_length } else { rule.max_bytes };
            if max > 0 {
                schema["maxLength"] = max.into();
            }
            if let Some(pattern) = rules::pattern(rule) {
                schema["pattern"] = pattern.into();
            }
            // An id that may be left empty ("" is proto3's unset) has no `format`, which
            // would refuse "": its pattern takes a canonical UUID or nothing.
            if rule.text == TextKind::Id && rule.min_length > 0 {
                schema["format"] = "uuid".into();
            }
        }
        Kind::Enum(_) if rule.specified => {
            if let Some(values) = schema["enum"].as_array_mut() {
                values.retain(|v| v.as_i64() != Some(0) && !v.as_str().is_some_and(|n| n.ends_with("_UNSPECIFIED")));
            }
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            if let Some(min) = rule.minimum {
                schema["minimum"] = min.into();
            }
            if let Some(max) = rule.maximum {
                schema["maximum"] = max.into();
            }
            // A 64-bit integer may come as a string: its pattern takes the same range.
            if schema["pattern"].is_string() {
                let min = rule.minimum.unwrap_or(i64::MIN);
                let max = rule.maximum.unwrap_or(i64::MAX);
                schema["pattern"] = integer_pattern(min, u64::try_from(max).unwrap_or(0)).into();
            }
        }
        Kind::Message(message) if message.full_name() == "google.protobuf.FieldMask" => {
            if let Some(pattern) = rules::pattern(rule) {
                schema["pattern"] = pattern.into();
            }
        }
        Kind::Message(message) if message.full_name() == "google.protobuf.Duration" => {
            if rule.minimum == Some(0)
                && let Some(max) = rule.maximum.and_then(|max| u64::try_from(max).ok())
            {
                schema["pattern"] = format!("^(?:{}(?:\\.[0-9]{{1,9}})?|{max}(?:\\.0{{1,9}})?)s$", below(max)).into();
                schema["description"] = format!("At most {max} seconds, as `12.5s`.").into();
            }
        }
        _ => {}
    }
    schema
}

/// The schema of a map's keys: names of 1 to `max_key_length` characters.
fn key_schema(rule: &Rule) -> Value {
    let key = Rule { text: TextKind::Name, min_length: 1, max_length: rule.max_key_length, ..rules::EMPTY };
    let mut schema = json!({"type": "string", "minLength": 1});
    if key.max_length > 0 {
        schema["maxLength"] = key.max_length.into();
    }
    if let Some(pattern) = rules::pattern(&key) {
        schema["pattern"] = pattern.into();
    }
    schema
}

/// A regular expression for the whole numbers written in decimal from `min` to `max`,
/// where `min` is 0 or `i64::MIN` (the contracts declare no other minimum; a test says so).
fn integer_pattern(min: i64, max: u64) -> String {
    let up_to_max = format!("{}|{max}", below(max).trim_start_matches("(?:").trim_end_matches(')'));
    if min == 0 {
        format!("^(?:{up_to_max})$")
    } else {
        format!("^(?:-?(?:{up_to_max})|-{})$", i64::MIN.unsigned_abs())
    }
}

/// A regular expression for the whole numbers from 0 to `max - 1` (`max` > 0),
/// without leading zeros.
fn below(max: u64) -> String {
    let digits: Vec<u32> = max.to_string().chars().filter_map(|c| c.to_digit(10)).collect();
    let mut alternatives = Vec::new();
    // Every length shorter than max's.
    for length in 1..digits.len() {
        alternatives.push(if length == 1 { "[0-9]".to_owned() } else { format!("[1-9][0-9]{{{}}}", length - 1) });
    }
    // Max's own length: a prefix of max, then a smaller digit, then any digits.
    for (position, &digit) in digits.iter().enumerate() {
        let low = u32::from(position == 0 && digits.len() > 1);
        if digit <= low {
            continue;
        }
        let prefix: String = digits[..position].iter().map(u32::to_string).collect();
        let rest = digits.len() - position - 1;
        let tail = if rest > 0 { format!("[0-9]{{{rest}}}") } else { String::new() };
        alternatives.push(format!("{prefix}[{low}-{}]{tail}", digit - 1));
    }
    format!("(?:{})", alternatives.join("|"))
}

/// The leading comment of a field, for its description.
fn field_comment(field: &FieldDescriptor) -> Option<String> {
    comments(&field.parent_file(), field.path())
}

/// The leading comment of the element at `path` of `file`, its lines trimmed.
fn comments(file: &FileDescriptor, path: &[i32]) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let location = info.location.iter().find(|l| l.path == path)?;
    let text = location.leading_comments.as_deref()?;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let text = lines.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// A comment's first sentence as the summary, the whole of it as the description.
fn summary_and_description(comment: Option<String>) -> (Option<String>, Option<String>) {
    let Some(text) = comment else { return (None, None) };
    let flat = text.replace('\n', " ");
    let summary = match flat.find(". ") {
        Some(end) => flat[..=end].to_owned(),
        None => flat.clone(),
    };
    (Some(summary), Some(text))
}

#[cfg(test)]
mod tests {
    use prost_reflect::DescriptorPool;

    use super::*;
    use crate::config::Settings;

    fn doc() -> Value {
        let pool = DescriptorPool::decode(fabula_contracts::FILE_DESCRIPTOR_SET).unwrap();
        let table = RouteTable::from_pool(pool, &Settings::for_tests("http://a", "http://b", "k".into())).unwrap();
        document(&table)
    }

    #[test]
    fn fields_follow_the_json_mapping() {
        let doc = doc();
        let story = &doc["components"]["schemas"]["fabula.story.v1.Story"];
        assert_eq!(story["properties"]["createTime"]["format"], "date-time");
        assert_eq!(story["properties"]["createTime"]["readOnly"], true);
        assert_eq!(story["properties"]["order"]["type"], json!(["string", "integer"]), "int64 as a string or a number");
        assert_eq!(story["properties"]["order"]["minimum"], 0, "the declared minimum");
        assert_eq!(story["properties"]["title"]["minLength"], 1);
        assert_eq!(story["properties"]["title"]["maxLength"], 200);
        assert_eq!(story["properties"]["entityIds"]["maxItems"], 200);
        assert_eq!(story["properties"]["entityIds"]["uniqueItems"], true);
        assert_eq!(story["properties"]["entityIds"]["items"]["format"], "uuid");
        let move_body = &doc["paths"]["/v1/stories/{id}/move"]["post"]["requestBody"]["content"]["application/json"];
        let before = &move_body["schema"]["properties"]["beforeId"];
        assert!(before.get("format").is_none(), "an id that may be empty is no `format: uuid`: {before}");
        assert!(before["pattern"].as_str().unwrap().ends_with(")?$"), "its pattern takes nothing too: {before}");
        assert_eq!(story["additionalProperties"], false);
        assert!(story["required"].as_array().unwrap().contains(&json!("title")));
        let entity = &doc["components"]["schemas"]["fabula.story.v1.Entity"];
        assert_eq!(entity["properties"]["attributes"]["additionalProperties"]["type"], "string");
    }

    #[test]
    fn numbers_below_a_bound_have_an_exact_pattern() {
        for max in [1, 5, 9, 10, 11, 99, 100, 101, 300, 1000, 2024] {
            let pattern = format!("^{}$", below(max));
            let regex = regex::Regex::new(&pattern).unwrap();
            for n in 0..max * 2 {
                assert_eq!(regex.is_match(&n.to_string()), n < max, "{n} against {pattern}");
            }
            assert!(!regex.is_match("007"), "leading zeros: {pattern}");
        }
        let int64 = regex::Regex::new(&integer_pattern(i64::MIN, i64::MAX.unsigned_abs())).unwrap();
        for good in ["0", "-0", "9223372036854775807", "-9223372036854775808", "-9223372036854775807", "42"] {
            assert!(int64.is_match(good), "{good}");
        }
        for bad in ["9223372036854775808", "-9223372036854775809", "10000000000000000000", "+1", "1.0", ""] {
            assert!(!int64.is_match(bad), "{bad}");
        }
        let uint64 = regex::Regex::new(&integer_pattern(0, u64::MAX)).unwrap();
        assert!(uint64.is_match("18446744073709551615") && !uint64.is_match("18446744073709551616"));
        assert!(!uint64.is_match("-1"));
        for (field, rule) in fabula_runtime::rules::ALL {
            assert!(rule.minimum.is_none_or(|min| min == 0), "{field}: only 0 is a minimum the patterns take");
        }
    }

    #[test]
    fn operations_carry_their_policy_and_success_status() {
        let doc = doc();
        let create = &doc["paths"]["/v1/worlds"]["post"];
        assert_eq!(create["operationId"], "CreateWorld");
        assert_eq!(create["security"], json!([{"bearer": []}]));
        assert!(create["responses"]["201"]["headers"]["Location"].is_object());
        let job = &doc["paths"]["/v1/jobs"]["post"];
        assert!(job["responses"]["202"]["headers"]["Location"].is_object());
        let watch = &doc["paths"]["/v1/jobs/{id}/watch"]["get"]["responses"]["200"]["content"];
        assert!(watch["text/event-stream"].is_object() && watch["application/x-ndjson"].is_object());
        let register = &doc["paths"]["/v1/auth/register"]["post"];
        assert_eq!(register["security"], json!([]));
        assert!(register["responses"]["401"].is_null());
    }

    #[test]
    fn an_update_body_requires_nothing_a_create_body_requires() {
        let doc = doc();
        let body = |path: &str, method: &str| {
            doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"].clone()
        };
        assert_eq!(body("/v1/worlds", "post"), json!({"$ref": "#/components/schemas/fabula.story.v1.World"}));
        let update = body("/v1/worlds/{id}", "patch");
        assert!(update["properties"]["name"].is_object(), "{update}");
        assert!(update.get("required").is_none(), "a partial update requires nothing: {update}");
    }

    #[test]
    fn a_body_is_required_where_the_gateway_refuses_none() {
        let doc = doc();
        let required = |path: &str, method: &str| doc["paths"][path][method]["requestBody"]["required"].clone();
        assert_eq!(required("/v1/worlds/{id}", "patch"), true, "an update's resource");
        assert_eq!(required("/v1/auth/register", "post"), true, "a whole request with required fields");
        assert_eq!(required("/v1/jobs/{id}/cancel", "post"), false, "a whole request of the path only");
    }

    #[test]
    fn the_gateways_own_operations_are_documented() {
        let doc = doc();
        for path in ["/healthz", "/readyz", "/metrics", "/v1/auth/watch-cookie"] {
            assert!(doc["paths"][path].is_object(), "{path} is missing");
        }
        assert!(doc["paths"]["/readyz"]["get"]["responses"]["503"].is_object());
    }
}
