//! Compiles `proto/minispark.proto` with protox (a pure-Rust protobuf
//! compiler), so building minispark needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/minispark.proto");
    let fds = protox::compile(["proto/minispark.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
