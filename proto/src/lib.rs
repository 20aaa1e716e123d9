//! # minispark-proto: the wire contract
//!
//! Everything that crosses a process boundary in minispark is defined in
//! `proto/minispark.proto` and generated here with tonic + prost:
//!
//! ```text
//!            SubmitJob (stream JobEvent)
//!  client ───────────────────────────────▶ Driver
//!                                           │  ▲
//!                 LaunchTask / CancelJob /  │  │ RegisterExecutor / Heartbeat
//!                 RemoveJobData             ▼  │
//!                                          Executor ◀──── FetchPartition ──── Executor / Driver
//!                                                         (Arrow IPC bytes)
//! ```
//!
//! This crate also maps errors between DataFusion and gRPC so that a failure
//! deep inside an executor reaches the user with its original message, says
//! where a process can be reached, secures every connection and bounds what
//! arrives over the wire:
//!
//! * [`advertised_address`]: the `host:port` a driver or executor hands to
//!   others (never `0.0.0.0`).
//! * [`auth`]: the cluster secret; a proof of it on every request, checked
//!   by every server before any service runs.
//! * [`tls`]: certificates, keys and CAs for TLS (rustls).
//! * [`security`]: both together for one process; the one way servers are
//!   started ([`security::serve`]) and clients made ([`driver_client`],
//!   [`executor_client`]).
//! * [`limits`]: the bounds every process checks on what arrives over the
//!   wire: id formats, slots, partitions, message sizes per RPC kind, nesting.
//! * [`block_fetch`]: one shuffle block fetched whole, with retries and
//!   backoff on passing errors (`NotFound` is final).
//! * [`request_limits`]: the layer holding each RPC's requests to its own
//!   size limit, read from the gRPC frame headers before a message is read.

#![allow(clippy::large_enum_variant)]

/// Generated messages and services.
pub mod pb {
    tonic::include_proto!("minispark");
}

pub use pb::*;

pub mod advertised_address;
pub mod auth;
pub mod block_fetch;
pub mod limits;
pub mod request_limits;
pub mod security;
pub mod tls;

pub use security::Security;

use datafusion::error::DataFusionError;

/// The largest gRPC message minispark sends or accepts (plans with huge
/// IN-lists or many unions exceed tonic's 4 MiB default). Each RPC kind has
/// its own, smaller or equal, limit in [`limits`].
pub const MAX_MESSAGE_SIZE: usize = limits::PLAN_MESSAGE_LIMIT;

/// Size of the chunks shuffle bytes are streamed in.
pub const DATA_CHUNK_SIZE: usize = 1 << 20;

/// Turns a gRPC status back into an engine error. Transport failures are
/// reported with the peer they concern.
pub fn from_status(status: tonic::Status, peer: &str) -> DataFusionError {
    let unreachable = status.code() == tonic::Code::Unavailable
        || (status.code() == tonic::Code::Unknown && status.message().contains("transport"));
    // rustls's word for a peer that answered a TLS handshake with something else.
    let plaintext_peer = status.message().contains("InvalidContentType");
    if unreachable && plaintext_peer {
        DataFusionError::External(
            format!(
                "cannot reach {peer}: {}: the peer does not speak TLS (use an http:// address, \
                 or start it with --tls-cert and --tls-key)",
                status.message()
            )
            .into(),
        )
    } else if unreachable {
        DataFusionError::External(format!("cannot reach {peer}: {}", status.message()).into())
    } else {
        DataFusionError::External(status.message().to_string().into())
    }
}

/// A channel whose every request carries a proof of the cluster secret.
pub type AuthChannel =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, auth::ClientAuth>;

/// The endpoint of `address` ("host:port" or a URL; bare addresses use TLS
/// when `security` does), with TLS for `https://`.
pub fn endpoint(
    address: &str,
    security: &Security,
) -> Result<tonic::transport::Endpoint, DataFusionError> {
    let url = security.url(address);
    let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone())
        .map_err(|e| DataFusionError::Configuration(format!("invalid address '{address}': {e}")))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(std::time::Duration::from_secs(10))
        .keep_alive_while_idle(true);
    if url.starts_with("https://") {
        let Some(tls) = &security.tls else {
            return Err(DataFusionError::Configuration(format!(
                "{url} is a TLS address: give --tls-ca (the CA that signed the cluster's \
                 certificates) to connect to it"
            )));
        };
        endpoint = endpoint
            .tls_config(tls.client.clone())
            .map_err(|e| DataFusionError::Configuration(format!("TLS for {url}: {e}")))?;
    }
    Ok(endpoint)
}

/// A lazily-connected gRPC channel to `address` whose requests carry a proof
/// of `security`'s secret.
pub fn channel(address: &str, security: &Security) -> Result<AuthChannel, DataFusionError> {
    Ok(tonic::service::interceptor::InterceptedService::new(
        endpoint(address, security)?.connect_lazy(),
        security.client_auth(),
    ))
}

/// A driver client with minispark's message limits: it sends plans
/// (SubmitJob) and receives results.
pub fn driver_client(
    address: &str,
    security: &Security,
) -> Result<driver_client::DriverClient<AuthChannel>, DataFusionError> {
    Ok(
        driver_client::DriverClient::new(channel(address, security)?)
            .max_decoding_message_size(limits::RESULT_MESSAGE_LIMIT)
            .max_encoding_message_size(limits::PLAN_MESSAGE_LIMIT),
    )
}

/// An executor client with minispark's message limits: it sends plans
/// (LaunchTask) and receives task statuses and shuffle block chunks.
pub fn executor_client(
    address: &str,
    security: &Security,
) -> Result<executor_client::ExecutorClient<AuthChannel>, DataFusionError> {
    Ok(
        executor_client::ExecutorClient::new(channel(address, security)?)
            .max_decoding_message_size(limits::BLOCK_MESSAGE_LIMIT)
            .max_encoding_message_size(limits::PLAN_MESSAGE_LIMIT),
    )
}
