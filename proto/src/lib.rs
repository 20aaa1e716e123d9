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
//! deep inside an executor reaches the user with its original message, and
//! holds the bounds every process checks on what arrives over the wire
//! ([`limits`]: id formats, slots, partitions, message sizes per RPC kind,
//! nesting).

#![allow(clippy::large_enum_variant)]

/// Generated messages and services.
pub mod pb {
    tonic::include_proto!("minispark");
}

pub use pb::*;

pub mod limits;

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
    if unreachable {
        DataFusionError::External(format!("cannot reach {peer}: {}", status.message()).into())
    } else {
        DataFusionError::External(status.message().to_string().into())
    }
}

/// Connects a lazily-established gRPC channel to `address` ("host:port" or a URL).
pub fn channel(address: &str) -> Result<tonic::transport::Channel, DataFusionError> {
    let url = if address.starts_with("http://") || address.starts_with("https://") {
        address.to_string()
    } else {
        format!("http://{address}")
    };
    let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
        .map_err(|e| DataFusionError::Configuration(format!("invalid address '{address}': {e}")))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(std::time::Duration::from_secs(10))
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}

/// A driver client with minispark's message limits: it sends plans
/// (SubmitJob) and receives results.
pub fn driver_client(
    address: &str,
) -> Result<driver_client::DriverClient<tonic::transport::Channel>, DataFusionError> {
    Ok(driver_client::DriverClient::new(channel(address)?)
        .max_decoding_message_size(limits::RESULT_MESSAGE_LIMIT)
        .max_encoding_message_size(limits::PLAN_MESSAGE_LIMIT))
}

/// An executor client with minispark's message limits: it sends plans
/// (LaunchTask) and receives task statuses and shuffle block chunks.
pub fn executor_client(
    address: &str,
) -> Result<executor_client::ExecutorClient<tonic::transport::Channel>, DataFusionError> {
    Ok(executor_client::ExecutorClient::new(channel(address)?)
        .max_decoding_message_size(limits::BLOCK_MESSAGE_LIMIT)
        .max_encoding_message_size(limits::PLAN_MESSAGE_LIMIT))
}
