//! Exchanges: where one stage hands its output to the next.
//!
//! A shuffle is split in two plan nodes that live in different stages:
//!
//! ```text
//!   stage 1 (map side)                      stage 2 (reduce side)
//!   ┌──────────────────────┐               ┌───────────────────────┐
//!   │ ShuffleWriterExec    │  files on     │ ShuffleReaderExec     │
//!   │  hash(keys) % N      │──executors'──▶│  partition r reads    │
//!   │  one task per input  │  disks        │  block (m, r) of each │
//!   │  partition m         │               │  map task m           │
//!   └──────────────────────┘               └───────────────────────┘
//! ```
//!
//! How map outputs become reader partitions depends on the [`ExchangeKind`]:
//!
//! ```text
//!   Hash / RoundRobin (N->M)   Single / Broadcast (N->1)   Forward (N->N)
//!   m0 ─┬─▶ r0                 m0 ─┐                       m0 ──▶ r0
//!       └─▶ r1                 m1 ─┼─▶ r0                  m1 ──▶ r1
//!   m1 ─┬─▶ r0                 m2 ─┘                       m2 ──▶ r2
//!       └─▶ r1
//! ```
//!
//! The nodes themselves are pure descriptions. Reading bytes is the job of a
//! [`ShuffleRuntime`] that the executor (or driver) installs in the task's
//! session config; writing is done by the executor's task runner.

mod fetch_failed;
pub mod hot_keys;
pub mod range;
mod reader;
mod writer;

pub use fetch_failed::FetchFailed;
pub use hot_keys::{HotKey, HotKeySampler, merge_hot_keys};
pub use range::{RangePartitioner, RangeSpec};
pub use reader::ShuffleReaderExec;
pub use writer::ShuffleWriterExec;

use std::fmt::Debug;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::{Result, internal_err};
use datafusion::execution::SendableRecordBatchStream;

/// How the blocks written by a stage's map tasks are grouped into the
/// partitions that the next stage reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeKind {
    /// Rows go to `pmod(spark_murmur3(keys), N)`: the classic shuffle.
    Hash = 0,
    /// Whole batches are dealt out to N partitions in turn.
    RoundRobin = 1,
    /// Every map output goes to one reader partition (a merge to one task).
    Single = 2,
    /// Like `Single`, but the one partition is read by every task of the
    /// consuming stage: the build side of a broadcast join.
    Broadcast = 3,
    /// Map task `m`'s output becomes reader partition `m`, order preserved
    /// (feeds a sort-preserving merge).
    Forward = 4,
    /// Rows go to the partition whose key range holds their key, between
    /// bounds sampled before the shuffle ([`range`]).
    Range = 5,
}

impl ExchangeKind {
    pub fn from_u32(v: u32) -> Result<Self> {
        Ok(match v {
            0 => Self::Hash,
            1 => Self::RoundRobin,
            2 => Self::Single,
            3 => Self::Broadcast,
            4 => Self::Forward,
            5 => Self::Range,
            other => return internal_err!("unknown exchange kind {other}"),
        })
    }

    /// Number of output blocks each map task writes, given the exchange's
    /// partition count.
    pub fn blocks_per_map(&self, num_partitions: usize) -> usize {
        match self {
            Self::Hash | Self::RoundRobin | Self::Range => num_partitions,
            Self::Single | Self::Broadcast | Self::Forward => 1,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Hash => "hash",
            Self::RoundRobin => "round-robin",
            Self::Single => "single",
            Self::Broadcast => "broadcast",
            Self::Forward => "forward",
            Self::Range => "range",
        }
    }
}

/// One block of shuffle output and the executor that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockLocation {
    pub executor_id: String,
    /// The executor's gRPC address, "host:port".
    pub address: String,
    pub job_id: String,
    pub stage_id: usize,
    pub map_partition: usize,
    pub reduce_partition: usize,
    /// The map task attempt whose committed output holds the block.
    pub map_attempt: u32,
    /// Compressed bytes and rows of the block, as reported by the map task.
    pub bytes: u64,
    pub rows: u64,
}

/// A map task's report for one block it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockStats {
    pub reduce_partition: usize,
    pub rows: u64,
    pub bytes: u64,
}

/// Where a finished map task's blocks live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapOutput {
    pub executor_id: String,
    pub address: String,
    pub map_partition: usize,
    /// The attempt whose output is committed (first commit wins).
    pub attempt: u32,
    pub blocks: Vec<BlockStats>,
    /// The task's heaviest shuffle keys (hash shuffles only).
    pub hot_keys: Vec<HotKey>,
}

/// Groups the outputs of a finished stage into the partitions of a reader
/// with the given kind and partition count. Empty blocks are skipped.
pub fn assign_blocks(
    job_id: &str,
    stage_id: usize,
    kind: ExchangeKind,
    num_partitions: usize,
    outputs: &[MapOutput],
) -> Vec<Vec<BlockLocation>> {
    let mut partitions = vec![Vec::new(); num_partitions];
    for output in outputs {
        for block in &output.blocks {
            if block.rows == 0 {
                continue;
            }
            let target = match kind {
                ExchangeKind::Hash | ExchangeKind::RoundRobin | ExchangeKind::Range => {
                    block.reduce_partition
                }
                ExchangeKind::Single | ExchangeKind::Broadcast => 0,
                ExchangeKind::Forward => output.map_partition,
            };
            partitions[target].push(BlockLocation {
                executor_id: output.executor_id.clone(),
                address: output.address.clone(),
                job_id: job_id.to_string(),
                stage_id,
                map_partition: output.map_partition,
                reduce_partition: block.reduce_partition,
                map_attempt: output.attempt,
                bytes: block.bytes,
                rows: block.rows,
            });
        }
    }
    // Read blocks in map order so results are deterministic.
    for blocks in &mut partitions {
        blocks.sort_by_key(|b| b.map_partition);
    }
    partitions
}

/// Reads shuffle blocks: installed by the process that runs tasks (the
/// executor, or the driver when it collects results) as a session config
/// extension, see [`ShuffleRuntimeExt`].
pub trait ShuffleRuntime: Debug + Send + Sync + 'static {
    /// A stream of the batches of `blocks`, in order, with schema `schema`,
    /// fetched as `fetch` says.
    fn read(
        &self,
        blocks: Vec<BlockLocation>,
        schema: SchemaRef,
        fetch: FetchSettings,
    ) -> Result<SendableRecordBatchStream>;

    /// The batches of a broadcast stage's output (`blocks`: the build side
    /// of a broadcast join), which every task of the consuming stage reads
    /// whole. An executor reads them once per stage and shares them among
    /// its tasks; by default, the same as [`Self::read`].
    fn read_broadcast(
        &self,
        blocks: Vec<BlockLocation>,
        schema: SchemaRef,
        fetch: FetchSettings,
    ) -> Result<SendableRecordBatchStream> {
        self.read(blocks, schema, fetch)
    }
}

/// How a task fetches shuffle blocks from other executors: the task's
/// `minispark.reducer.maxSizeInFlight`, `minispark.shuffle.io.maxRetries`,
/// `minispark.shuffle.io.retryWait` and
/// `minispark.shuffle.io.connectionTimeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchSettings {
    /// Most bytes of remote blocks fetched and not yet read, at once.
    pub max_bytes_in_flight: u64,
    /// A remote block larger than this is fetched to disk, not memory.
    pub max_block_in_memory: u64,
    /// Retries of a fetch that failed for a passing reason.
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub retry_wait: std::time::Duration,
    /// Longest wait for the next answer of a fetch (its first bytes, then
    /// each chunk) before that try fails and is retried.
    pub connection_timeout: std::time::Duration,
}

impl FetchSettings {
    pub fn from_config(config: &crate::config::MinisparkConfig) -> Self {
        Self {
            max_bytes_in_flight: config.reducer_max_size_in_flight,
            max_block_in_memory: config.network_max_remote_block_size_fetch_to_mem,
            max_retries: config.shuffle_io_max_retries,
            retry_wait: std::time::Duration::from_millis(config.shuffle_io_retry_wait_ms),
            connection_timeout: std::time::Duration::from_millis(
                config.shuffle_io_connection_timeout_ms,
            ),
        }
    }

    /// The wait before retry number `retry` (1 for the first): the retry
    /// wait, doubled for each retry after the first, at most 1 hour.
    pub fn backoff(&self, retry: u32) -> std::time::Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(16);
        self.retry_wait
            .saturating_mul(factor)
            .min(std::time::Duration::from_secs(3600))
    }
}

impl Default for FetchSettings {
    fn default() -> Self {
        Self::from_config(&crate::config::MinisparkConfig::default())
    }
}

/// The session config extension that carries the [`ShuffleRuntime`].
#[derive(Debug, Clone)]
pub struct ShuffleRuntimeExt(pub Arc<dyn ShuffleRuntime>);
