//! A REST update changes the fields its body holds, as a JSON merge patch does
//! (RFC 7396): the gateway makes the call's `update_mask` from the body's keys, each
//! one a field the method's mask may name (`fabula.options.v1.rules`), and `null`
//! for a message field (a location's `coordinates`) clears it. A body's other keys
//! (its `etag`, what the path sets, what is output only) are not changes. The mask is
//! not a REST parameter: what a client sends is what it changes, so a required field
//! cannot be named and left out.

use fabula_runtime::rules::{self, lower_camel};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};

use crate::{
    errors::ApiError,
    routes::{BodyRule, Route},
};

/// The request field of an update's mask.
const UPDATE_MASK: &str = "update_mask";

/// The body field and the paths its mask may name, when `route` is an update.
pub fn updatable(route: &Route) -> Option<(&FieldDescriptor, &'static [&'static str])> {
    let BodyRule::Field(body) = &route.body else { return None };
    let mask = route.method.input().get_field_by_name(UPDATE_MASK)?;
    rules::declared(mask.full_name()).map(|rule| (body, rule.paths))
}

/// Takes out of `body`, the body field's value, each `null` that clears a message
/// field, returning those fields' proto names.
pub fn take_cleared(route: &Route, body: &mut Value) -> Vec<String> {
    let (Some((field, paths)), Value::Object(object)) = (updatable(route), body) else { return Vec::new() };
    let Kind::Message(message) = field.kind() else { return Vec::new() };
    let cleared: Vec<(String, String)> = object
        .iter()
        .filter(|(_, value)| value.is_null())
        .filter_map(|(key, _)| clearable(&message, key, paths).map(|name| (key.clone(), name)))
        .collect();
    for (key, _) in &cleared {
        object.remove(key);
    }
    cleared.into_iter().map(|(_, name)| name).collect()
}

/// The proto name of the message field `key` names, when it is one the mask may name.
fn clearable(message: &MessageDescriptor, key: &str, paths: &[&str]) -> Option<String> {
    let field = message.get_field_by_json_name(key).or_else(|| message.get_field_by_name(key))?;
    let is_message = matches!(field.kind(), Kind::Message(_)) && !field.is_list() && !field.is_map();
    (is_message && paths.contains(&field.name())).then(|| field.name().to_owned())
}

/// Sets the update mask of `root`, the request of an update `route`, to the fields its
/// body holds and those `cleared`. A mask the client sent itself is refused.
pub fn set_mask(route: &Route, root: &mut Map<String, Value>, cleared: &[String]) -> Result<(), ApiError> {
    let Some((body, paths)) = updatable(route) else { return Ok(()) };
    if root.contains_key(&lower_camel(UPDATE_MASK)) || root.contains_key(UPDATE_MASK) {
        return Err(ApiError::bad_field(
            &lower_camel(UPDATE_MASK),
            "is not taken over REST: an update changes the fields its body holds",
        ));
    }
    let Kind::Message(message) = body.kind() else { return Ok(()) };
    let sent = root.get(body.json_name()).and_then(Value::as_object);
    let mut named: Vec<String> = sent
        .into_iter()
        .flat_map(|object| object.keys())
        .filter_map(|key| message.get_field_by_json_name(key).or_else(|| message.get_field_by_name(key)))
        .map(|field| field.name().to_owned())
        .chain(cleared.iter().cloned())
        .filter(|name| paths.contains(&name.as_str()))
        .collect();
    named.sort_unstable();
    named.dedup();
    let mask = named.iter().map(|name| lower_camel(name)).collect::<Vec<_>>().join(",");
    root.insert(lower_camel(UPDATE_MASK), Value::String(mask));
    Ok(())
}
