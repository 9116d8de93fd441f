//! The declared rules of request fields (`fabula.options.v1.rules`), checked on the
//! JSON a REST client sent, before it is transcoded. Every field present is checked,
//! whatever an update mask says of it, so that what the OpenAPI document refuses is
//! refused; the services check again for their gRPC callers. Problems are named by the
//! path the client wrote. Values of the wrong JSON type are left to the transcoder.

use fabula_runtime::rules::Checks;
use fabula_runtime::{
    errors::FieldViolations,
    rules::{self, Rule},
};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};

use crate::errors::ApiError;

/// Checks every field of `json`, a request of `input`, that declares rules.
pub fn check(input: &MessageDescriptor, json: &Map<String, Value>) -> Result<(), ApiError> {
    let mut violations = FieldViolations::new();
    check_message(input, json, "", &mut violations);
    violations.finish().map_err(|status| ApiError::upstream(status, input))
}

fn check_message(message: &MessageDescriptor, json: &Map<String, Value>, prefix: &str, out: &mut FieldViolations) {
    for (key, value) in json {
        let Some(field) = message.get_field_by_json_name(key).or_else(|| message.get_field_by_name(key)) else {
            continue;
        };
        let path = format!("{prefix}{key}");
        let rule = rules::declared(field.full_name());
        match value {
            Value::Object(map) if field.is_map() => check_map(&field, rule, map, &path, out),
            Value::Array(items) if field.is_list() => check_list(&field, rule, items, &path, out),
            value => check_value(&field.kind(), rule, value, &path, out),
        }
    }
}

fn check_map(
    field: &FieldDescriptor,
    rule: Option<&Rule>,
    map: &Map<String, Value>,
    path: &str,
    out: &mut FieldViolations,
) {
    let Some(rule) = rule else { return };
    if let Err(problem) = rule.check_count(map.len()) {
        out.add(path, problem);
    }
    let value_kind = match field.kind() {
        Kind::Message(entry) => entry.map_entry_value_field().kind(),
        kind => kind,
    };
    for (key, value) in map {
        if let Err(problem) = rule.check_key(key) {
            out.add(path, problem);
        } else {
            check_value(
                &value_kind,
                Some(rule),
                value,
                &format!("{path}[{}]", fabula_runtime::errors::quote(key)),
                out,
            );
        }
    }
}

fn check_list(field: &FieldDescriptor, rule: Option<&Rule>, items: &[Value], path: &str, out: &mut FieldViolations) {
    let texts: Option<Vec<String>> = items.iter().map(|item| item.as_str().map(str::to_owned)).collect();
    match (rule, texts) {
        (Some(rule), Some(texts)) if field.kind() == Kind::String => {
            rule.check_list(path, &texts, out);
        }
        _ => {
            if let Some(Err(problem)) = rule.map(|rule| rule.check_count(items.len())) {
                out.add(path, problem);
            }
            for (index, item) in items.iter().enumerate() {
                check_value(&field.kind(), rule, item, &format!("{path}[{index}]"), out);
            }
        }
    }
}

/// One value: a text, an integer or an enum against `rule`, or a message's fields.
/// Whatever the rule, an integer must be exact and an enum number a declared one.
fn check_value(kind: &Kind, rule: Option<&Rule>, value: &Value, path: &str, out: &mut FieldViolations) {
    let problem = match (kind, value, rule) {
        (Kind::Message(message), Value::Object(map), _) => {
            check_message(message, map, &format!("{path}."), out);
            return;
        }
        (kind, Value::Number(number), rule) if integer_range(kind).is_some() => {
            integer_problem(kind, number).or_else(|| rule.and_then(|rule| rule.check_int(integer(value)?).err()))
        }
        (Kind::Enum(values), Value::Number(number), _)
            if number.as_i64().and_then(|n| i32::try_from(n).ok()).and_then(|n| values.get_value(n)).is_none() =>
        {
            let names: Vec<String> = values.values().map(|value| value.name().to_owned()).collect();
            Some(format!("is not one of the values {}", names.join(", ")))
        }
        (Kind::String, Value::String(text), Some(rule)) => rules::text(text, rule).err(),
        (Kind::Int32 | Kind::Int64 | Kind::Sint32 | Kind::Sint64 | Kind::Sfixed32 | Kind::Sfixed64, _, Some(rule)) => {
            integer(value).and_then(|n| rule.check_int(n).err())
        }
        (Kind::Message(message), Value::String(text), Some(rule))
            if message.full_name() == "google.protobuf.Duration" =>
        {
            whole_seconds(text).and_then(|seconds| rule.check_int(seconds).err())
        }
        (Kind::Enum(_), _, Some(rule)) if rule.specified && is_unspecified(value) => {
            Some("must be one of the named values, not the unspecified one".to_owned())
        }
        _ => None,
    };
    if let Some(problem) = problem {
        out.add(path, problem);
    }
}

/// The values an integer field holds; `None` when it is not one.
fn integer_range(kind: &Kind) -> Option<(i128, i128)> {
    Some(match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => (i32::MIN.into(), i32::MAX.into()),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => (i64::MIN.into(), i64::MAX.into()),
        Kind::Uint32 | Kind::Fixed32 => (0, u32::MAX.into()),
        Kind::Uint64 | Kind::Fixed64 => (0, u64::MAX.into()),
        _ => return None,
    })
}

/// What is wrong with `number` for an integer field of `kind`: not a whole number,
/// past the field's range, or past 2^63 written so that JSON parsers round it (such a
/// number is rounded once read, so it could pass a range check it fails as written).
fn integer_problem(kind: &Kind, number: &serde_json::Number) -> Option<String> {
    let (min, max) = integer_range(kind)?;
    let Some(value) = exact_integer(number) else {
        return Some(match number.as_f64() {
            Some(value) if value.fract() == 0.0 => {
                format!("is {number}, past what a JSON number holds exactly; send a 64-bit integer as a string")
            }
            _ => format!("must be a whole number, not {number}"),
        });
    };
    (value < min || value > max).then(|| format!("must be between {min} and {max}, not {value}"))
}

/// `number` as an integer, when it is one exactly: written as one, or a whole number
/// written as a decimal (`523.0`) below 2^63.
fn exact_integer(number: &serde_json::Number) -> Option<i128> {
    const TWO_TO_THE_63: f64 = 9_223_372_036_854_775_808.0;
    if let Some(value) = number.as_i64() {
        return Some(value.into());
    }
    if let Some(value) = number.as_u64() {
        return Some(value.into());
    }
    let value = number.as_f64()?;
    (value.fract() == 0.0 && value.abs() < TWO_TO_THE_63).then_some(value as i128)
}

/// An integer sent as a JSON number or a string; `None` for anything else.
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => exact_integer(n).and_then(|n| i64::try_from(n).ok()),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

/// The whole seconds of a duration such as `12.5s`, rounded up; `None` when it is
/// not one (the transcoder says so).
fn whole_seconds(text: &str) -> Option<i64> {
    let number = text.strip_suffix('s')?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let seconds: i64 = whole.parse().ok()?;
    let has_fraction = fraction.bytes().any(|b| b != b'0');
    Some(if has_fraction && !whole.starts_with('-') { seconds + 1 } else { seconds })
}

fn is_unspecified(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(name) => name.ends_with("_UNSPECIFIED"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use prost_reflect::DescriptorPool;
    use serde_json::json;

    use super::*;

    fn message(name: &str) -> MessageDescriptor {
        let pool = DescriptorPool::decode(fabula_contracts::FILE_DESCRIPTOR_SET).unwrap();
        pool.get_message_by_name(name).unwrap()
    }

    struct Case {
        what: &'static str,
        request: &'static str,
        json: Value,
        /// The fields named, as the client wrote them; none when the request passes.
        named: &'static [&'static str],
    }

    #[test]
    fn every_field_present_is_checked_as_declared() {
        #[rustfmt::skip]
        let cases = [
            Case { what: "a good world", request: "fabula.story.v1.CreateWorldRequest", json: json!({"world": {"name": "Eldoria", "worldType": "FANTASY"}}), named: &[] },
            Case { what: "a blank name", request: "fabula.story.v1.CreateWorldRequest", json: json!({"world": {"name": "  "}}), named: &["world.name"] },
            Case { what: "an empty name outside the mask", request: "fabula.story.v1.UpdateWorldRequest", json: json!({"world": {"id": "0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c", "name": ""}, "updateMask": "description"}), named: &["world.name"] },
            Case { what: "a proto name spelling", request: "fabula.story.v1.CreateWorldRequest", json: json!({"world": {"name": "a\u{202e}b"}, "request_id": "r"}), named: &["world.name"] },
            Case { what: "a braced id", request: "fabula.story.v1.GetWorldRequest", json: json!({"id": "{0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c}"}), named: &["id"] },
            Case { what: "a negative page size", request: "fabula.story.v1.ListWorldsRequest", json: json!({"pageSize": "-1"}), named: &["pageSize"] },
            Case { what: "an id twice in a list", request: "fabula.story.v1.UpdateStoryRequest", json: json!({"story": {"entityIds": ["0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c", "0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c"]}}), named: &["story.entityIds[1]"] },
            Case { what: "a connection to no id", request: "fabula.story.v1.CreateEventRequest", json: json!({"event": {"title": "T", "connections": [{"targetEventId": "x"}]}}), named: &["event.connections[0].targetEventId"] },
            Case { what: "an attribute key of control characters", request: "fabula.story.v1.CreateEntityRequest", json: json!({"entity": {"name": "N", "attributes": {"a\nb": "v"}}}), named: &["entity.attributes"] },
            Case { what: "an unspecified role", request: "fabula.accounts.v1.UpdateUserRequest", json: json!({"user": {"role": "ROLE_UNSPECIFIED"}, "updateMask": "disabled"}), named: &["user.role"] },
            Case { what: "a wait too long", request: "fabula.jobs.v1.WaitJobRequest", json: json!({"timeout": "300.5s"}), named: &["timeout"] },
            Case { what: "a wait just long enough", request: "fabula.jobs.v1.WaitJobRequest", json: json!({"timeout": "300s"}), named: &[] },
            Case { what: "a 64-bit integer past its range", request: "fabula.story.v1.UpdateEventRequest", json: json!({"event": {"storyPosition": -9_223_372_036_854_775_809.0_f64}}), named: &["event.storyPosition"] },
            Case { what: "a whole number written as a decimal", request: "fabula.story.v1.CreateEventRequest", json: json!({"event": {"title": "T", "year": 523.0}}), named: &[] },
            Case { what: "a decimal past the declared maximum", request: "fabula.story.v1.CreateStoryRequest", json: json!({"story": {"title": "T", "order": 1e18}}), named: &["story.order"] },
            Case { what: "past the 64-bit range, as an integer", request: "fabula.story.v1.UpdateEventRequest", json: json!({"event": {"storyPosition": 9_223_372_036_854_775_808_u64}}), named: &["event.storyPosition"] },
            Case { what: "past the 32-bit range", request: "fabula.story.v1.ListWorldsRequest", json: json!({"pageSize": 4_294_967_296_i64}), named: &["pageSize"] },
            Case { what: "a fraction for an integer", request: "fabula.story.v1.ListWorldsRequest", json: json!({"pageSize": 2.5}), named: &["pageSize"] },
            Case { what: "the greatest 64-bit integer", request: "fabula.story.v1.UpdateEventRequest", json: json!({"event": {"storyPosition": i64::MAX}}), named: &[] },
            Case { what: "an enum number not declared", request: "fabula.accounts.v1.UpdateMeRequest", json: json!({"user": {"role": -4394}}), named: &["user.role"] },
            Case { what: "an enum number declared", request: "fabula.story.v1.CreateWorldRequest", json: json!({"world": {"name": "W", "worldType": 1}}), named: &[] },
            Case { what: "a password of spaces", request: "fabula.accounts.v1.RegisterRequest", json: json!({"username": "ada", "email": "a@b.c", "password": "            "}), named: &["password"] },
        ];
        for case in cases {
            let Value::Object(map) = case.json else { panic!("{}: not an object", case.what) };
            let named: Vec<String> = match check(&message(case.request), &map) {
                Ok(()) => Vec::new(),
                Err(error) => error
                    .details
                    .iter()
                    .filter_map(|d| d["fieldViolations"].as_array())
                    .flatten()
                    .filter_map(|v| v["field"].as_str().map(str::to_owned))
                    .collect(),
            };
            assert_eq!(named, case.named, "{}", case.what);
        }
    }
}
