//! What the proto3 JSON mapping would let a body say silently, refused instead with a
//! 400 naming the field: a key given twice (serde_json keeps the last), one field given
//! by its JSON name and its proto name (prost-reflect keeps the last), and `null` for a
//! field (prost-reflect reads it as "not set", so a client would believe it sent
//! something). Null stays a value where it is one: `google.protobuf.Value`, `NullValue`
//! and the wrapper types.

use std::{cell::RefCell, fmt};

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value, map::Entry};

use crate::errors::ApiError;

/// The well-known types that JSON null is a value of.
const NULL_IS_A_VALUE: [&str; 11] = [
    "google.protobuf.Value",
    "google.protobuf.NullValue",
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
];

/// One step of the way to a value: an object's key or an array's index.
enum Step<K> {
    Key(K),
    Index(usize),
}

/// The steps as a field path, `a.b[2].c`, after `within` when there is one.
fn path_text<K: AsRef<str>>(within: Option<&str>, steps: &[Step<K>], last: Option<&str>) -> String {
    let mut out = within.unwrap_or_default().to_owned();
    let keys = steps.iter().map(|step| match step {
        Step::Key(key) => Step::Key(key.as_ref()),
        Step::Index(index) => Step::Index(*index),
    });
    for step in keys.chain(last.map(Step::Key)) {
        match step {
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// The JSON `body`; a key given twice in one of its objects is refused, named by its
/// path after `within` (the body field's name, when the body is one field).
pub fn parse(body: &[u8], within: Option<&str>) -> Result<Value, ApiError> {
    let trail = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = UniqueKeys { trail: &trail }.deserialize(&mut deserializer);
    parsed.and_then(|value| deserializer.end().map(|()| value)).map_err(|error| match trail.into_inner() {
        Some(mut steps) => {
            steps.reverse();
            ApiError::bad_field(&path_text(within, &steps, None), "is given twice")
        }
        None => ApiError::bad_request("MALFORMED_JSON", format!("the body is not valid JSON: {error}")),
    })
}

/// A JSON value read as serde_json reads one, but an object that has a key twice is an
/// error. As that error unwinds, each level adds where it was to `trail`.
#[derive(Clone, Copy)]
struct UniqueKeys<'t> {
    /// The steps to the key given twice, innermost first, once there is one.
    trail: &'t RefCell<Option<Vec<Step<String>>>>,
}

impl UniqueKeys<'_> {
    fn twice(&self, key: String) {
        *self.trail.borrow_mut() = Some(vec![Step::Key(key)]);
    }

    fn within(&self, step: impl FnOnce() -> Step<String>) {
        if let Some(steps) = self.trail.borrow_mut().as_mut() {
            steps.push(step());
        }
    }
}

impl<'de> DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self).inspect_err(|_| self.within(|| Step::Index(items.len())))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self).inspect_err(|_| self.within(|| Step::Key(key.clone())))?;
            match object.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                Entry::Occupied(slot) => {
                    self.twice(slot.key().clone());
                    return Err(de::Error::custom("a key is given twice"));
                }
            }
        }
        Ok(Value::Object(object))
    }
}

/// Checks an object that is the whole request, a `message`.
pub fn check_message(object: &Map<String, Value>, message: &MessageDescriptor) -> Result<(), ApiError> {
    Walk { within: None, steps: Vec::new() }.message(object, message)
}

/// Checks `value`, the body of a route whose body is `field`.
pub fn check_field(field: &FieldDescriptor, value: &Value) -> Result<(), ApiError> {
    Walk { within: Some(field.json_name()), steps: Vec::new() }.field(field, value)
}

/// A walk of a body beside its descriptors, the steps to where it is kept to name a
/// field it refuses.
struct Walk<'a> {
    within: Option<&'a str>,
    steps: Vec<Step<&'a str>>,
}

impl<'a> Walk<'a> {
    fn message(&mut self, object: &'a Map<String, Value>, message: &MessageDescriptor) -> Result<(), ApiError> {
        for (key, value) in object {
            // An unknown key is prost-reflect's to name.
            let Some(field) = message.get_field_by_json_name(key).or_else(|| message.get_field_by_name(key)) else {
                continue;
            };
            if key != field.json_name() && object.contains_key(field.json_name()) {
                let twice = format!("is given twice, as {} and as {}", field.json_name(), field.name());
                return Err(self.refuse(Some(field.json_name()), twice));
            }
            self.steps.push(Step::Key(key));
            self.field(&field, value)?;
            self.steps.pop();
        }
        Ok(())
    }

    fn field(&mut self, field: &FieldDescriptor, value: &'a Value) -> Result<(), ApiError> {
        match (value, field.kind()) {
            (Value::Array(items), kind) if field.is_list() => {
                let items = items.iter().enumerate().map(|(index, item)| (Step::Index(index), item));
                self.elements(&kind, items)
            }
            (Value::Object(entries), Kind::Message(entry)) if field.is_map() => {
                let entries = entries.iter().map(|(key, entry)| (Step::Key(key.as_str()), entry));
                self.elements(&entry.map_entry_value_field().kind(), entries)
            }
            (value, kind) => self.element(&kind, value),
        }
    }

    fn elements(
        &mut self,
        kind: &Kind,
        elements: impl Iterator<Item = (Step<&'a str>, &'a Value)>,
    ) -> Result<(), ApiError> {
        for (step, element) in elements {
            self.steps.push(step);
            self.element(kind, element)?;
            self.steps.pop();
        }
        Ok(())
    }

    /// One value of `kind`: not null unless null is one, and a message's fields checked
    /// (but for the well-known types, whose JSON is their own).
    fn element(&mut self, kind: &Kind, value: &'a Value) -> Result<(), ApiError> {
        match (kind, value) {
            (_, Value::Null) if !null_is_a_value(kind) => {
                Err(self.refuse(None, "must not be null: leave the field out instead"))
            }
            (Kind::Message(message), Value::Object(object)) if !message.full_name().starts_with("google.protobuf.") => {
                self.message(object, message)
            }
            _ => Ok(()),
        }
    }

    /// 400 naming the field where the walk is, or `last` in the object there.
    fn refuse(&self, last: Option<&str>, description: impl Into<String>) -> ApiError {
        ApiError::bad_field(&path_text(self.within, &self.steps, last), description)
    }
}

fn null_is_a_value(kind: &Kind) -> bool {
    match kind {
        Kind::Message(message) => NULL_IS_A_VALUE.contains(&message.full_name()),
        Kind::Enum(enumeration) => NULL_IS_A_VALUE.contains(&enumeration.full_name()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use prost_reflect::DescriptorPool;

    use super::*;

    /// A body and the field the gateway refuses it for, if any.
    struct Case {
        why: &'static str,
        /// The request message, when the body is the whole request; else the body field
        /// of `fabula.story.v1.UpdateWorldRequest` (`world`).
        whole: Option<&'static str>,
        body: &'static str,
        refused: Option<&'static str>,
    }

    fn check(case: &Case) -> Result<(), ApiError> {
        let pool = DescriptorPool::decode(fabula_contracts::FILE_DESCRIPTOR_SET).unwrap();
        let update = pool.get_message_by_name("fabula.story.v1.UpdateWorldRequest").unwrap();
        let world = update.get_field_by_name("world").unwrap();
        let within = case.whole.is_none().then_some(world.json_name());
        let value = parse(case.body.as_bytes(), within)?;
        match case.whole {
            Some(name) => check_message(value.as_object().unwrap(), &pool.get_message_by_name(name).unwrap()),
            None => check_field(&world, &value),
        }
    }

    #[test]
    fn what_proto3_json_would_take_silently_is_refused_naming_the_field() {
        let create_job = Some("fabula.jobs.v1.CreateJobRequest");
        let create_entity = Some("fabula.story.v1.CreateEntityRequest");
        let cases = [
            Case { why: "a plain body", whole: None, body: r#"{"name": "a", "worldType": "FANTASY"}"#, refused: None },
            Case {
                why: "a key twice",
                whole: None,
                body: r#"{"name": "a", "name": "b"}"#,
                refused: Some("world.name"),
            },
            Case {
                why: "a key twice, deeper",
                whole: create_job,
                body: r#"{"spec": {"paraphrase": {"text": "a", "text": "b"}}}"#,
                refused: Some("spec.paraphrase.text"),
            },
            Case {
                why: "a key twice in an array's object",
                whole: None,
                body: r#"{"x": [1, {"a": 1, "a": 2}]}"#,
                refused: Some("world.x[1].a"),
            },
            Case {
                why: "a map key twice",
                whole: create_entity,
                body: r#"{"entity": {"name": "E", "attributes": {"k": "1", "k": "2"}}}"#,
                refused: Some("entity.attributes.k"),
            },
            Case {
                why: "a field by both its names",
                whole: None,
                body: r#"{"worldType": "FANTASY", "world_type": "OTHER"}"#,
                refused: Some("world.worldType"),
            },
            Case {
                why: "a field by both its names, deeper",
                whole: create_job,
                body: r#"{"spec": {"batchAnalyze": {"storyIds": [], "story_ids": []}}}"#,
                refused: Some("spec.batchAnalyze.storyIds"),
            },
            Case { why: "a null field", whole: None, body: r#"{"name": null}"#, refused: Some("world.name") },
            Case { why: "a null body", whole: None, body: "null", refused: Some("world") },
            Case {
                why: "a null deeper",
                whole: create_job,
                body: r#"{"spec": {"paraphrase": {"text": "a", "mode": null}}}"#,
                refused: Some("spec.paraphrase.mode"),
            },
            Case {
                why: "a null in a list",
                whole: create_job,
                body: r#"{"spec": {"batchAnalyze": {"storyIds": ["a", null]}}}"#,
                refused: Some("spec.batchAnalyze.storyIds[1]"),
            },
            Case {
                why: "a null map value",
                whole: create_entity,
                body: r#"{"entity": {"name": "E", "attributes": {"k": null}}}"#,
                refused: Some("entity.attributes.k"),
            },
            Case {
                why: "a null list",
                whole: create_job,
                body: r#"{"spec": {"batchAnalyze": {"storyIds": null}}}"#,
                refused: Some("spec.batchAnalyze.storyIds"),
            },
            Case {
                why: "an unknown key is left to prost-reflect",
                whole: None,
                body: r#"{"colour": null}"#,
                refused: None,
            },
        ];
        for case in cases {
            let refused = check(&case).err();
            let field = refused.as_ref().map(|e| e.details[1]["fieldViolations"][0]["field"].as_str().unwrap());
            assert_eq!(field, case.refused, "{}: {refused:?}", case.why);
        }
    }

    #[test]
    fn malformed_json_is_no_field_error() {
        for body in ["{\"name\": ", "[1,]", "{} {}", "{\"a\": 1 \"b\": 2}"] {
            let error = parse(body.as_bytes(), None).unwrap_err();
            assert_eq!(error.details[0]["reason"], "MALFORMED_JSON", "{body}: {error:?}");
        }
    }

    #[test]
    fn null_is_kept_where_it_is_a_value() {
        let pool = DescriptorPool::global();
        for name in NULL_IS_A_VALUE {
            let kind = match pool.get_message_by_name(name) {
                Some(message) => Kind::Message(message),
                None => Kind::Enum(pool.get_enum_by_name(name).expect("the descriptor set has the well-known types")),
            };
            assert!(null_is_a_value(&kind), "{name}");
        }
    }
}
