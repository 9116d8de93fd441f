//! JSON ⇄ protobuf by the proto3 canonical mapping (prost-reflect's serde support):
//! a request message assembled from the path variables, the query and the body as
//! its route says, and a response message written as lowerCamelCase JSON.

use fabula_runtime::{errors::quote, rules::lower_camel};
use prost_reflect::{DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, SerializeOptions};
use serde_json::{Map, Value};
use serde_path_to_error::Segment;

use crate::{
    errors::ApiError,
    patch,
    routes::{BodyRule, Route, field_path},
    strict, validate,
};

/// The well-known types written as one JSON string, which a query value may set.
const STRING_MESSAGES: [&str; 3] =
    ["google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"];

/// The request message of `route` from its path variables, query string and body.
pub fn request_message(
    route: &Route,
    vars: &[(String, String)],
    query: Option<&str>,
    body: &[u8],
) -> Result<DynamicMessage, ApiError> {
    let input = route.method.input();
    let (mut root, cleared) = body_json(route, body)?;
    for (path, text) in vars {
        set_from_path(&mut root, &input, path, text)?;
    }
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        apply_query(&mut root, &input, &route.body, query)?;
    }
    patch::set_mask(route, &mut root, &cleared)?;
    validate::check(&input, &root)?;
    deserialize(input, &Value::Object(root))
}

/// The body as the start of the request's JSON object, read and checked by [`strict`]:
/// under the body field's JSON name when the body is one field, which may be required;
/// and, for an update, the fields its `null`s clear ([`patch`]).
fn body_json(route: &Route, body: &[u8]) -> Result<(Map<String, Value>, Vec<String>), ApiError> {
    let field = match &route.body {
        BodyRule::Field(field) => Some(field),
        _ => None,
    };
    let blank = body.iter().all(u8::is_ascii_whitespace);
    let value = if blank { Value::Null } else { strict::parse(body, field.map(FieldDescriptor::json_name))? };
    match (&route.body, value) {
        (BodyRule::Field(field), Value::Null) if route.body_required => {
            Err(ApiError::bad_field(field.json_name(), "is required: send it as the body"))
        }
        (_, Value::Null) if blank => Ok((Map::new(), Vec::new())),
        (BodyRule::None, _) => Err(ApiError::bad_request("UNEXPECTED_BODY", "this call takes no body")),
        (BodyRule::Whole, Value::Object(map)) => {
            strict::check_message(&map, &route.method.input())?;
            Ok((map, Vec::new()))
        }
        (BodyRule::Whole, _) => Err(ApiError::bad_request("MALFORMED_JSON", "the body must be a JSON object")),
        (BodyRule::Field(field), mut value) => {
            let cleared = patch::take_cleared(route, &mut value);
            strict::check_field(field, &value)?;
            Ok((Map::from_iter([(field.json_name().to_owned(), value)]), cleared))
        }
    }
}

/// Sets the field at the dotted `path` (proto names) from a path variable; a body that
/// set it otherwise is a collision. Errors name the field by its JSON path.
fn set_from_path(
    root: &mut Map<String, Value>,
    input: &MessageDescriptor,
    path: &str,
    text: &str,
) -> Result<(), ApiError> {
    let name = json_path(input, path);
    let fields = field_path(input, path).map_err(|e| ApiError::bad_field(&name, e))?;
    let value = scalar(fields.last().ok_or_else(|| ApiError::bad_field(&name, "empty path"))?, text, &name)?;
    let names: Vec<&str> = fields.iter().map(FieldDescriptor::json_name).collect();
    let (parent, key) = entry(root, &fields, &names, &name)?;
    match parent.get(&key) {
        Some(existing) if *existing != value => {
            Err(ApiError::bad_field(&name, "the path and the body disagree on this field; leave it out of the body"))
        }
        _ => {
            parent.insert(key, value);
            Ok(())
        }
    }
}

/// Applies `a.b=1&c=x&c=y` to the request, each key a field path of proto or JSON names.
fn apply_query(
    root: &mut Map<String, Value>,
    input: &MessageDescriptor,
    body: &BodyRule,
    query: &str,
) -> Result<(), ApiError> {
    for (key, text) in form_urlencoded::parse(query.as_bytes()) {
        let fields = query_field(input, &key).ok_or_else(|| unknown_parameter(&key))?;
        let first = fields.first().ok_or_else(|| unknown_parameter(&key))?;
        let in_body = match body {
            BodyRule::Whole => true,
            BodyRule::Field(field) => field == first,
            BodyRule::None => false,
        };
        if in_body {
            return Err(ApiError::bad_field(&key, "this field goes in the body, not the query"));
        }
        let last = fields.last().ok_or_else(|| unknown_parameter(&key))?;
        let value = scalar(last, &text, &key)?;
        let names: Vec<&str> = key.split('.').collect();
        let (parent, name) = entry(root, &fields, &names, &key)?;
        match (parent.get_mut(&name), last.is_list()) {
            (None, true) => drop(parent.insert(name, Value::Array(vec![value]))),
            (None, false) => drop(parent.insert(name, value)),
            (Some(Value::Array(items)), true) => items.push(value),
            (Some(_), _) => return Err(ApiError::bad_field(&key, "given twice, or also by the path")),
        }
    }
    Ok(())
}

fn unknown_parameter(key: &str) -> ApiError {
    ApiError::bad_field(key, "unknown query parameter")
}

/// The fields along a query key, each part a proto or JSON name, ending on a field a
/// string can set.
fn query_field(input: &MessageDescriptor, key: &str) -> Option<Vec<FieldDescriptor>> {
    let mut fields = Vec::new();
    let mut current = Some(input.clone());
    for part in key.split('.') {
        let message = current.take()?;
        let field = message.get_field_by_name(part).or_else(|| message.get_field_by_json_name(part))?;
        if field.is_map() {
            return None;
        }
        if let Kind::Message(inner) = field.kind()
            && !STRING_MESSAGES.contains(&inner.full_name())
        {
            current = Some(inner);
        }
        fields.push(field);
    }
    current.is_none().then_some(fields)
}

/// The object holding the last field of `fields`, made on the way, and that field's
/// key; `names` are the client's spelling of each, used for keys not there yet.
fn entry<'a>(
    root: &'a mut Map<String, Value>,
    fields: &[FieldDescriptor],
    names: &[&str],
    path: &str,
) -> Result<(&'a mut Map<String, Value>, String), ApiError> {
    let (last, parents) = fields.split_last().ok_or_else(|| ApiError::bad_field(path, "empty path"))?;
    let mut current = root;
    for (field, name) in parents.iter().zip(names) {
        let key = existing_key(current, field, name);
        let slot = current.entry(key).or_insert_with(|| Value::Object(Map::new()));
        current = slot.as_object_mut().ok_or_else(|| ApiError::bad_field(path, "must be an object"))?;
    }
    let key = existing_key(current, last, names.last().copied().unwrap_or(last.name()));
    Ok((current, key))
}

/// The key a body already used for `field` (its JSON or proto name), else `name`.
fn existing_key(map: &Map<String, Value>, field: &FieldDescriptor, name: &str) -> String {
    [field.json_name(), field.name()].into_iter().find(|k| map.contains_key(*k)).unwrap_or(name).to_owned()
}

/// A path or query string as the JSON value of `field`.
fn scalar(field: &FieldDescriptor, text: &str, name: &str) -> Result<Value, ApiError> {
    match field.kind() {
        Kind::Bool => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(ApiError::bad_field(name, "must be true or false")),
        },
        Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask" => {
            // A mask's snake_case paths, written lowerCamelCase as its JSON form wants.
            Ok(Value::String(lower_camel(text)))
        }
        Kind::Message(m) if !STRING_MESSAGES.contains(&m.full_name()) => {
            Err(ApiError::bad_field(name, "a message cannot be set from a string"))
        }
        // An enum by its number (`state=4`), as its JSON form allows, or by its name.
        Kind::Enum(_) => Ok(text.parse::<i32>().map_or_else(|_| Value::String(text.to_owned()), Value::from)),
        _ => Ok(Value::String(text.to_owned())),
    }
}

/// The message from its JSON, each error naming the field it is about and quoting
/// (short) the value it is about.
fn deserialize(input: MessageDescriptor, json: &Value) -> Result<DynamicMessage, ApiError> {
    let mut track = serde_path_to_error::Track::new();
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let deserializer = serde_path_to_error::Deserializer::new(json, &mut track);
    DynamicMessage::deserialize_with_options(input, deserializer, &options).map_err(|error| {
        let message = error.to_string();
        let path = track.path();
        let unknown = unknown_field(&message);
        // The path ends at the object that holds an unknown field: name the field itself.
        let field = match (path.to_string(), unknown) {
            (path, Some(name)) if path == "." => name.to_owned(),
            (path, Some(name)) => format!("{path}.{name}"),
            (path, None) if path == "." => "body".to_owned(),
            (path, None) => path,
        };
        let sent = unknown.or_else(|| text_at(json, &path));
        ApiError::bad_field(&field, without_echo(&message, sent))
    })
}

/// The string at `path` in `json`, when there is one.
fn text_at<'a>(json: &'a Value, path: &serde_path_to_error::Path) -> Option<&'a str> {
    let value = path.iter().try_fold(json, |value, segment| match segment {
        Segment::Seq { index } => value.get(index),
        Segment::Map { key } => value.get(key),
        Segment::Enum { .. } | Segment::Unknown => None,
    });
    value?.as_str()
}

/// A deserializer's `message` with `sent`, the client's text it is about, quoted short:
/// serde writes it whole as `{:?}` does, prost-reflect whole in single quotes.
fn without_echo(message: &str, sent: Option<&str>) -> String {
    let Some(sent) = sent else { return message.to_owned() };
    let quoted = quote(sent);
    message.replace(&format!("{sent:?}"), &quoted).replace(&format!("'{sent}'"), &quoted)
}

/// The name in prost-reflect's "unrecognized field name 'x'".
fn unknown_field(message: &str) -> Option<&str> {
    let quoted = message.strip_prefix("unrecognized field name '")?;
    quoted.split_once('\'').map(|(name, _)| name)
}

/// `path`, a field path of proto names as the services write them (`world.world_type`,
/// `spec.batch_analyze.story_ids[2]`, `entity.attributes["key"]`), with each field of
/// `message` along it named by its JSON name; what is not a field (a subscript, a name
/// `message` does not have) stays as it is.
pub fn json_path(message: &MessageDescriptor, path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut current = Some(message.clone());
    let mut rest = path;
    loop {
        let (name, after) = rest.split_at(rest.find(['.', '[']).unwrap_or(rest.len()));
        let field = current.as_ref().and_then(|m| m.get_field_by_name(name));
        out.push_str(field.as_ref().map_or(name, FieldDescriptor::json_name));
        current = field.as_ref().and_then(value_message);
        let (subscripts, after) = after.split_at(subscripts_len(after));
        out.push_str(subscripts);
        match after.strip_prefix('.') {
            Some(next) => {
                out.push('.');
                rest = next;
            }
            None => {
                out.push_str(after);
                return out;
            }
        }
    }
}

/// The message a field's values are, for a map its values' message.
fn value_message(field: &FieldDescriptor) -> Option<MessageDescriptor> {
    let kind = match field.kind() {
        Kind::Message(entry) if field.is_map() => entry.map_entry_value_field().kind(),
        kind => kind,
    };
    kind.as_message().cloned()
}

/// The length of the `[2]["key"]` subscripts at the start of `text`, a quoted key
/// (escaped as `{:?}` writes it) read whole whatever it holds.
fn subscripts_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut end = 0;
    while bytes.get(end) == Some(&b'[') {
        let (mut i, mut quoted) = (end + 1, false);
        while let Some(&byte) = bytes.get(i) {
            i += 1;
            match byte {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b']' if !quoted => break,
                _ => {}
            }
        }
        end = i.min(bytes.len());
    }
    // An escape of a non-ASCII character could end inside it: go on to a boundary.
    (end..=bytes.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(bytes.len())
}

/// A message as canonical JSON: lowerCamelCase, enums by name, 64-bit integers as strings.
pub fn response_json(message: &DynamicMessage) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    let mut serializer = serde_json::Serializer::new(&mut out);
    message.serialize_with_options(&mut serializer, &SerializeOptions::new())?;
    Ok(out)
}

/// A string field of `message` at the dotted `path`, for a `Location`.
pub fn string_at(message: &DynamicMessage, path: &str) -> Option<String> {
    let (head, rest) = path.split_once('.').map_or((path, None), |(h, r)| (h, Some(r)));
    let value = message.get_field_by_name(head)?;
    match (rest, value.as_ref()) {
        (None, prost_reflect::Value::String(s)) => Some(s.clone()),
        (Some(rest), prost_reflect::Value::Message(inner)) => string_at(inner, rest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::Method;
    use prost_reflect::DescriptorPool;

    use super::*;
    use crate::{
        config::Settings,
        routes::{Found, RouteTable},
    };

    fn table() -> RouteTable {
        let pool = DescriptorPool::decode(fabula_contracts::FILE_DESCRIPTOR_SET).unwrap();
        RouteTable::from_pool(pool, &Settings::for_tests("http://a", "http://b", "k".into())).unwrap()
    }

    fn find(table: &RouteTable, method: Method, path: &str) -> (Arc<Route>, Vec<(String, String)>) {
        match table.find(&method, path) {
            Found::Route(route, vars) => (route.clone(), vars),
            _ => panic!("no route for {path}"),
        }
    }

    fn json_of(message: &DynamicMessage) -> Value {
        serde_json::from_slice(&response_json(message).unwrap()).unwrap()
    }

    #[test]
    fn path_query_and_body_make_one_message() {
        let table = table();
        let (route, vars) = find(&table, Method::PATCH, "/v1/stories/0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c");
        let body = br#"{"title": "T", "entity_ids": ["0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7d"], "order": "7"}"#;
        let message = request_message(&route, &vars, None, body).unwrap();
        let json = json_of(&message);
        assert_eq!(json["story"]["id"], "0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c");
        assert_eq!(json["story"]["entityIds"][0], "0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7d");
        assert_eq!(json["story"]["order"], "7");
        assert_eq!(json["updateMask"], "entityIds,order,title", "the mask names what the body holds");
    }

    #[test]
    fn repeated_and_nested_query_parameters() {
        let table = table();
        let (route, vars) = find(&table, Method::GET, "/v1/jobs/0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c/watch");
        let message = request_message(&route, &vars, Some("afterSeq=5"), b"").unwrap();
        assert_eq!(json_of(&message)["afterSeq"], "5");
        let (route, vars) = find(&table, Method::GET, "/v1/worlds");
        for (query, field) in
            [("nope=1", "nope"), ("page_size=x", "page_size"), ("page_size=1&page_size=2", "page_size")]
        {
            let error = request_message(&route, &vars, Some(query), b"").unwrap_err();
            assert_eq!(error.http, 400, "{query}");
            assert!(error.message.contains(field), "{query}: {}", error.message);
        }
    }

    #[test]
    fn an_enum_query_parameter_is_a_name_or_a_number() {
        let table = table();
        let (route, vars) = find(&table, Method::GET, "/v1/users/me/stories");
        for (query, view) in [("view=FULL", "FULL"), ("view=2", "FULL"), ("view=BASIC", "BASIC")] {
            let message = request_message(&route, &vars, Some(query), b"").unwrap();
            assert_eq!(json_of(&message)["view"], view, "{query}");
        }
        for query in ["view=9", "view=WHOLE"] {
            assert_eq!(request_message(&route, &vars, Some(query), b"").unwrap_err().http, 400, "{query}");
        }
    }

    #[test]
    fn an_unknown_field_is_named_by_its_whole_path() {
        let table = table();
        let cases: [(&str, &[u8], &str); 3] = [
            ("/v1/worlds", br#"{"name": "W", "colour": 1}"#, "world.colour: "),
            (
                "/v1/worlds/0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c/locations",
                br#"{"name": "L", "coordinates": {"x": 1, "z": 2}}"#,
                "location.coordinates.z: ",
            ),
            ("/v1/jobs", br#"{"spec": {}}"#, "spec.spec: "),
        ];
        for (path, body, starts) in cases {
            let (route, vars) = find(&table, Method::POST, path);
            let error = request_message(&route, &vars, None, body).unwrap_err();
            assert!(error.message.starts_with(starts), "{path}: {}", error.message);
        }
    }

    /// A field path as a service names it, and as a REST client does.
    struct JsonPathCase {
        message: &'static str,
        proto: &'static str,
        json: &'static str,
    }

    #[test]
    fn field_paths_are_given_in_json_names() {
        let pool = DescriptorPool::decode(fabula_contracts::FILE_DESCRIPTOR_SET).unwrap();
        let cases = [
            JsonPathCase { message: "fabula.story.v1.ListWorldsRequest", proto: "page_size", json: "pageSize" },
            JsonPathCase {
                message: "fabula.story.v1.UpdateWorldRequest",
                proto: "world.world_type",
                json: "world.worldType",
            },
            JsonPathCase { message: "fabula.story.v1.UpdateWorldRequest", proto: "update_mask", json: "updateMask" },
            JsonPathCase {
                message: "fabula.story.v1.UpdateStoryRequest",
                proto: "story.entity_ids",
                json: "story.entityIds",
            },
            JsonPathCase {
                message: "fabula.story.v1.UpdateStoryRequest",
                proto: "story.entity_ids[2]",
                json: "story.entityIds[2]",
            },
            JsonPathCase {
                message: "fabula.jobs.v1.CreateJobRequest",
                proto: "spec.batch_analyze.story_ids[0]",
                json: "spec.batchAnalyze.storyIds[0]",
            },
            JsonPathCase { message: "fabula.jobs.v1.CreateJobRequest", proto: "request_id", json: "requestId" },
            JsonPathCase {
                message: "fabula.story.v1.CreateEntityRequest",
                proto: r#"entity.attributes["first_name"]"#,
                json: r#"entity.attributes["first_name"]"#,
            },
            JsonPathCase {
                message: "fabula.story.v1.CreateEntityRequest",
                proto: r#"entity.attributes["a.b[\"c]"]"#,
                json: r#"entity.attributes["a.b[\"c]"]"#,
            },
            JsonPathCase { message: "fabula.story.v1.CreateEntityRequest", proto: "world_id", json: "worldId" },
            JsonPathCase {
                message: "fabula.story.v1.CreateEntityRequest",
                proto: "no_such.field_name",
                json: "no_such.field_name",
            },
            JsonPathCase { message: "fabula.story.v1.CreateEntityRequest", proto: "", json: "" },
            JsonPathCase { message: "fabula.story.v1.CreateEntityRequest", proto: "entity.", json: "entity." },
            JsonPathCase { message: "fabula.story.v1.CreateEntityRequest", proto: "entity[\"é", json: "entity[\"é" },
        ];
        for case in cases {
            let message = pool.get_message_by_name(case.message).unwrap();
            assert_eq!(json_path(&message, case.proto), case.json, "{}", case.proto);
        }
    }

    #[test]
    fn a_collision_between_path_and_body_is_refused() {
        let table = table();
        let (route, vars) = find(&table, Method::PATCH, "/v1/stories/0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c");
        assert!(request_message(&route, &vars, None, br#"{"id": "0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c"}"#).is_ok());
        let error =
            request_message(&route, &vars, None, br#"{"id": "0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7d"}"#).unwrap_err();
        assert!(error.message.contains("story.id"), "{}", error.message);
    }
}
