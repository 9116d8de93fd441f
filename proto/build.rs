//! Compiles `proto/` with protox (no system `protoc`), generates the tonic code,
//! writes the descriptor set the services register for reflection, turns each
//! method's `fabula.options.v1.auth_policy` into a lookup table, and each field's
//! `fabula.options.v1.rules` into a constant. The build fails when a method lacks its
//! HTTP binding or its auth policy, or a text field of a request lacks its rules.

use std::{collections::HashSet, env, fmt::Write as _, fs, path::PathBuf};

use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};

const PROTO_ROOT: &str = "proto";
const HTTP_OPTION: &str = "google.api.http";
const POLICY_OPTION: &str = "fabula.options.v1.auth_policy";
const RULES_OPTION: &str = "fabula.options.v1.rules";
const BEHAVIOR_OPTION: &str = "google.api.field_behavior";
/// `google.api.FieldBehavior` numbers.
const REQUIRED: i32 = 2;
const OUTPUT_ONLY: i32 = 3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    let files = proto_files(PROTO_ROOT.into())?;
    let mut compiler = protox::Compiler::new([PROTO_ROOT])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(&files)?;

    let out = PathBuf::from(env::var("OUT_DIR")?);
    // Encoded by the compiler itself: a `prost_types` round trip would drop the
    // extension options (`google.api.http`, the auth policy) the gateway reads.
    fs::write(out.join("fabula_descriptor.bin"), compiler.encode_file_descriptor_set())?;
    let fds = compiler.file_descriptor_set();
    let pool = compiler.descriptor_pool();
    fs::write(out.join("auth_policies.rs"), policy_table(&pool)?)?;
    fs::write(out.join("rules_table.rs"), rules_table(&pool)?)?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // A finished job is far larger than the other updates of a watch.
        .boxed(".fabula.jobs.v1.JobUpdate.kind.finished")
        .compile_fds(fds)?;
    Ok(())
}

/// Every `.proto` under `dir`, relative to the proto root, in a stable order.
fn proto_files(dir: PathBuf) -> std::io::Result<Vec<String>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.is_dir() {
            found.extend(proto_files(path)?);
        } else if path.extension().is_some_and(|e| e == "proto") {
            let relative = path.strip_prefix(PROTO_ROOT).expect("under the proto root");
            found.push(relative.to_string_lossy().into_owned());
        }
    }
    found.sort();
    Ok(found)
}

/// A `match` from gRPC path to policy for every method of every `fabula.*` service.
fn policy_table(pool: &DescriptorPool) -> Result<String, String> {
    let http = pool.get_extension_by_name(HTTP_OPTION).ok_or("google.api.http is not declared")?;
    let policy = pool.get_extension_by_name(POLICY_OPTION).ok_or("auth_policy is not declared")?;
    let mut table = String::from(
        "/// The declared auth policy of a gRPC method, by its path `/package.Service/Method`.\n\
         pub fn declared_policy(path: &str) -> Option<AuthPolicy> {\n    match path {\n",
    );
    for service in pool.services().filter(|s| s.full_name().starts_with("fabula.")) {
        for method in service.methods() {
            let options = method.options();
            let name = format!("/{}/{}", service.full_name(), method.name());
            if !options.has_extension(&http) {
                return Err(format!("{name} has no google.api.http binding"));
            }
            let value = options.get_extension(&policy);
            let Value::EnumNumber(number) = value.as_ref() else {
                return Err(format!("{name}: auth_policy is not an enum"));
            };
            let variant = policy
                .kind()
                .as_enum()
                .and_then(|e| e.get_value(*number))
                .map(|v| v.name().to_owned())
                .filter(|v| v != "AUTH_POLICY_UNSPECIFIED")
                .ok_or_else(|| format!("{name} declares no auth_policy"))?;
            let variant = to_upper_camel(&variant);
            writeln!(table, "        {name:?} => Some(AuthPolicy::{variant}),").expect("write to string");
        }
    }
    table.push_str("        _ => None,\n    }\n}\n");
    Ok(table)
}

fn to_upper_camel(screaming: &str) -> String {
    screaming
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| first.to_string() + &chars.as_str().to_lowercase())
        })
        .collect()
}

/// A module per package and message with a constant per field that declares rules,
/// and `declared`, the rule of a field by its full name. Every text field of a
/// request (a method's input and the messages it holds, output-only fields aside)
/// must declare its rules.
fn rules_table(pool: &DescriptorPool) -> Result<String, String> {
    let rules = pool.get_extension_by_name(RULES_OPTION).ok_or("fabula.options.v1.rules is not declared")?;
    let behavior = pool.get_extension_by_name(BEHAVIOR_OPTION).ok_or("google.api.field_behavior is not declared")?;
    let has_behavior = |field: &FieldDescriptor, wanted: i32| {
        let options = field.options();
        options.has_extension(&behavior)
            && matches!(options.get_extension(&behavior).as_ref(), Value::List(values)
                if values.iter().any(|v| v.as_enum_number() == Some(wanted)))
    };
    let inputs = request_messages(pool, &|field| has_behavior(field, OUTPUT_ONLY));
    // Per package, a module per message holding a constant per field.
    let mut packages = std::collections::BTreeMap::<String, String>::new();
    let mut lookup = String::from(
        "/// The declared rule of a field, by its full name `package.Message.field`.\n\
         pub fn declared(field: &str) -> Option<&'static Rule> {\n    match field {\n",
    );
    let mut all =
        String::from("/// Every declared rule, by the full name of its field.\npub const ALL: &[(&str, &Rule)] = &[\n");
    for message in pool.all_messages().filter(|m| m.package_name().starts_with("fabula.")) {
        let package = message.package_name().split('.').nth(1).unwrap_or_default().to_owned();
        let mut constants = String::new();
        for field in message.fields() {
            let options = field.options();
            if !options.has_extension(&rules) {
                if inputs.contains(message.full_name()) && needs_rules(&field) && !has_behavior(&field, OUTPUT_ONLY) {
                    return Err(format!("{} is text in a request without fabula.options.v1.rules", field.full_name()));
                }
                continue;
            }
            let Value::Message(declared) = options.get_extension(&rules).into_owned() else {
                return Err(format!("{}: rules is not a message", field.full_name()));
            };
            let rule = rule_literal(pool, &field, &declared, has_behavior(&field, REQUIRED))?;
            let name = field.name().to_uppercase();
            writeln!(constants, "        pub const {name}: crate::rules::Rule = {rule};").expect("write to string");
            let path = format!("{package}::{}::{name}", snake(message.name()));
            writeln!(lookup, "        {:?} => Some(&{path}),", field.full_name()).expect("write to string");
            writeln!(all, "    ({:?}, &{path}),", field.full_name()).expect("write to string");
        }
        if !constants.is_empty() {
            let module = packages.entry(package).or_default();
            writeln!(module, "    pub mod {} {{\n{constants}    }}", snake(message.name())).expect("write to string");
        }
    }
    lookup.push_str("        _ => None,\n    }\n}\n");
    let mut out = String::new();
    for (package, modules) in packages {
        // `story::story` holds the rules of the Story message.
        writeln!(out, "#[allow(clippy::module_inception)]\npub mod {package} {{\n{modules}}}")
            .expect("write to string");
    }
    out.push_str(&lookup);
    out.push_str(&all);
    out.push_str("];\n");
    Ok(out)
}

/// The full names of the messages a request can hold: each method's input and,
/// through its fields that are not output-only, every Fabula message inside it.
fn request_messages(pool: &DescriptorPool, output_only: &dyn Fn(&FieldDescriptor) -> bool) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut pending: Vec<MessageDescriptor> = pool
        .services()
        .filter(|s| s.package_name().starts_with("fabula."))
        .flat_map(|s| s.methods().map(|m| m.input()).collect::<Vec<_>>())
        .collect();
    while let Some(message) = pending.pop() {
        if !seen.insert(message.full_name().to_owned()) {
            continue;
        }
        for field in message.fields().filter(|f| !output_only(f)) {
            if let Kind::Message(inner) = field.kind()
                && inner.package_name().starts_with("fabula.")
                && !inner.is_map_entry()
            {
                pending.push(inner);
            }
        }
    }
    seen
}

/// Whether a field holds text a client writes: a string, a list of them, a map to them.
fn needs_rules(field: &FieldDescriptor) -> bool {
    match field.kind() {
        Kind::String => true,
        Kind::Message(entry) if field.is_map() => matches!(entry.map_entry_value_field().kind(), Kind::String),
        Kind::Message(message) => message.full_name() == "google.protobuf.FieldMask",
        _ => false,
    }
}

/// The `Rule { … }` expression of a field's declared rules.
fn rule_literal(
    pool: &DescriptorPool,
    field: &FieldDescriptor,
    rules: &DynamicMessage,
    required: bool,
) -> Result<String, String> {
    let number = |name: &str| match rules.get_field_by_name(name).as_deref() {
        Some(Value::U32(n)) => *n as usize,
        _ => 0,
    };
    let optional_int = |name: &str| match (rules.has_field_by_name(name), rules.get_field_by_name(name).as_deref()) {
        (true, Some(Value::I64(n))) => format!("Some({n})"),
        _ => "None".to_owned(),
    };
    let kind = match rules.get_field_by_name("text").as_deref() {
        Some(Value::EnumNumber(n)) => {
            let kind = pool.get_enum_by_name("fabula.options.v1.TextKind").and_then(|e| e.get_value(*n));
            kind.map(|v| to_upper_camel(v.name().trim_start_matches("TEXT_KIND_")))
                .unwrap_or_else(|| "Unspecified".into())
        }
        _ => "Unspecified".into(),
    };
    if needs_rules(field) && kind == "Unspecified" {
        return Err(format!("{}: its rules name no text kind", field.full_name()));
    }
    let min_length = if required && needs_rules(field) { number("min_length").max(1) } else { number("min_length") };
    let min_items = usize::from(required && field.is_list());
    let filter = filter_literal(pool, field, rules)?;
    let paths = match rules.get_field_by_name("paths").as_deref() {
        Some(Value::List(paths)) => {
            paths.iter().filter_map(|p| p.as_str()).map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", ")
        }
        _ => String::new(),
    };
    let flag = |name: &str| matches!(rules.get_field_by_name(name).as_deref(), Some(Value::Bool(true)));
    let (unique_items, specified) = (flag("unique_items"), flag("specified"));
    Ok(format!(
        "crate::rules::Rule {{ text: crate::rules::TextKind::{kind}, min_length: {min_length}, max_length: {}, \
         max_bytes: {}, min_items: {min_items}, max_items: {}, max_key_length: {}, minimum: {}, maximum: {}, filter: &[{filter}], \
         paths: &[{paths}], unique_items: {unique_items}, specified: {specified} }}",
        number("max_length"),
        number("max_bytes"),
        number("max_items"),
        number("max_key_length"),
        optional_int("minimum"),
        optional_int("maximum"),
    ))
}

/// The `FilterField`s of a FILTER rule, each enum or oneof resolved to its names.
fn filter_literal(pool: &DescriptorPool, field: &FieldDescriptor, rules: &DynamicMessage) -> Result<String, String> {
    let Some(Value::List(fields)) = rules.get_field_by_name("filter").map(|v| v.into_owned()) else {
        return Ok(String::new());
    };
    let mut out = Vec::new();
    for declared in fields.iter().filter_map(Value::as_message) {
        let text = |name: &str| {
            declared.get_field_by_name(name).and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
        };
        let (name, values) = (text("name"), text("values"));
        let values = match values.as_str() {
            "" => "crate::rules::FilterValues::Text".to_owned(),
            "bool" => "crate::rules::FilterValues::Bool".to_owned(),
            full => {
                let names = value_names(pool, full)
                    .ok_or_else(|| format!("{}: filter values {full:?} name no enum or oneof", field.full_name()))?;
                let names: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
                format!("crate::rules::FilterValues::Names(&[{}])", names.join(", "))
            }
        };
        out.push(format!("crate::rules::FilterField {{ name: {name:?}, values: {values} }}"));
    }
    Ok(out.join(", "))
}

/// The value names of the enum `full` (but its UNSPECIFIED one), or the field names of
/// the oneof `full` (`package.Message.oneof`).
fn value_names(pool: &DescriptorPool, full: &str) -> Option<Vec<String>> {
    if let Some(e) = pool.get_enum_by_name(full) {
        return Some(e.values().filter(|v| v.number() != 0).map(|v| v.name().to_owned()).collect());
    }
    let (message, oneof) = full.rsplit_once('.')?;
    let oneof = pool.get_message_by_name(message)?.oneofs().find(|o| o.name() == oneof)?;
    Some(oneof.fields().map(|f| f.name().to_owned()).collect())
}

/// `WorldShare` → `world_share`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
