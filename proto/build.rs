//! Compiles `proto/` with protox (no system `protoc`), generates the tonic code,
//! writes the descriptor set the services register for reflection, and turns each
//! method's `fabula.options.v1.auth_policy` into a lookup table. The build fails
//! when a method lacks its HTTP binding or its auth policy.

use std::{env, fmt::Write as _, fs, path::PathBuf};

use prost_reflect::{DescriptorPool, Value};

const PROTO_ROOT: &str = "proto";
const HTTP_OPTION: &str = "google.api.http";
const POLICY_OPTION: &str = "fabula.options.v1.auth_policy";

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
    fs::write(out.join("auth_policies.rs"), policy_table(&compiler.descriptor_pool())?)?;

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
