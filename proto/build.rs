//! Compiles the `.proto` files under `proto/` with protox (a protobuf
//! compiler written in Rust, so no `protoc` is needed) and generates the
//! prost messages, and with the `grpc` feature the tonic stubs, from the
//! resulting file descriptor set. The encoded descriptor set is written to
//! `OUT_DIR` too, for gRPC reflection.

use std::env;
use std::error::Error;
use std::fs;
use std::path::PathBuf;

use prost::Message as _;

/// Every `.proto` file of the crate, relative to the include root `proto/`.
const PROTOS: &[&str] = &[
    "assembly/common/v1/common.proto",
    "assembly/gateway/v1/gateway.proto",
    "assembly/policy/v1/policy.proto",
    "assembly/approval/v1/approval.proto",
    "assembly/agent/v1/agent.proto",
    "tether/admin/v1/admin.proto",
];

/// Include root of the `.proto` files, relative to the crate.
const INCLUDE: &str = "proto";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={INCLUDE}/{proto}");
    }

    // protox resolves each file against the include root, checks the whole
    // set and returns it with imports and source info (comments, which
    // prost turns into doc comments).
    let fds = protox::compile(PROTOS, [INCLUDE])?;

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    fs::write(out_dir.join("tether_descriptor.bin"), fds.encode_to_vec())?;

    let grpc = env::var_os("CARGO_FEATURE_GRPC").is_some();
    let transport = env::var_os("CARGO_FEATURE_TRANSPORT").is_some();
    tonic_prost_build::configure()
        .build_client(grpc)
        .build_server(grpc)
        .build_transport(transport)
        .compile_fds(fds)?;
    Ok(())
}
