//! The reduce side of a shuffle on an executor: Spark's
//! `ShuffleBlockFetcherIterator`.
//!
//! A task's reader partition is a list of blocks in map order. Each block
//! is read as a stream:
//!
//! * a block of this executor straight from its committed output on disk,
//!   in chunks (never whole in memory);
//! * a block of another executor fetched whole over gRPC, several at once:
//!   a fetch starts once the bytes of the fetched blocks not yet read stay
//!   within `minispark.reducer.maxSizeInFlight` (a larger block is fetched
//!   alone), at most [`MAX_REQUESTS_IN_FLIGHT`] at a time. A fetch that
//!   fails for a passing reason is retried with backoff
//!   (`minispark.shuffle.io.maxRetries`, `minispark.shuffle.io.retryWait`,
//!   see `minispark_proto::block_fetch`).
//!
//! Batches come out in map order whatever order the fetches finish in, so
//! results stay deterministic.
//!
//! A block that cannot be read fails the task with a typed
//! [`FetchFailed`]: *missing* when its executor answered that it does not
//! have it (or a local block's files are gone), *unreachable* when its
//! executor could not be reached after the retries. The driver recomputes a
//! missing block's map output; see `minispark_planner::exchange::FetchFailed`
//! for the rest.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};
use minispark_planner::exchange::{BlockLocation, FetchFailed, FetchSettings, ShuffleRuntime};
use minispark_planner::ipc::decode_chunk_stream;
use minispark_proto::block_fetch::{BlockFetchError, fetch_block};
use minispark_proto::executor_client::ExecutorClient;
use minispark_proto::{AuthChannel, Security, ShuffleBlock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::shuffle_index::{DATA_FILE, ShuffleIndex, segment_chunks};

/// Most fetches of one task under way at once (Spark's
/// `spark.reducer.maxReqsInFlight` is unbounded; this keeps the number of
/// open streams to one executor sane at thousands of map tasks).
pub const MAX_REQUESTS_IN_FLIGHT: usize = 64;

/// Reads shuffle blocks for the tasks of one executor: its own blocks
/// straight from disk, other executors' over gRPC.
#[derive(Debug)]
pub struct ExecutorShuffleRuntime {
    /// The id of the process this runs in; blocks with this id are local.
    /// Empty in the driver, which has no blocks of its own.
    pub executor_id: String,
    pub work_dir: PathBuf,
    clients: Mutex<HashMap<String, ExecutorClient<AuthChannel>>>,
    /// The secret and TLS settings of fetches from other executors.
    security: Security,
}

impl ExecutorShuffleRuntime {
    pub fn new(executor_id: String, work_dir: PathBuf, security: Security) -> Self {
        Self {
            executor_id,
            work_dir,
            clients: Mutex::default(),
            security,
        }
    }

    fn client(&self, address: &str) -> Result<ExecutorClient<AuthChannel>> {
        let mut clients = self.clients.lock().expect("client cache lock");
        if let Some(c) = clients.get(address) {
            return Ok(c.clone());
        }
        let client = minispark_proto::executor_client(address, &self.security)?;
        clients.insert(address.to_string(), client.clone());
        Ok(client)
    }
}

/// The wire form of a block's ids.
pub fn block_proto(b: &BlockLocation) -> ShuffleBlock {
    ShuffleBlock {
        job_id: b.job_id.clone(),
        stage_id: b.stage_id as u32,
        map_partition: b.map_partition as u32,
        reduce_partition: b.reduce_partition as u32,
        map_attempt: b.map_attempt,
    }
}

/// The batches of one block; the future resolves once the block may be
/// read (a remote block: fetched).
type BlockRead = BoxFuture<'static, Result<BoxStream<'static, Result<RecordBatch>>>>;

/// Bytes of the in-flight budget are counted in KiB, so that a budget of
/// terabytes still fits the semaphore's `u32` requests.
fn kib(bytes: u64) -> u32 {
    bytes.div_ceil(1024).clamp(1, u32::MAX as u64) as u32
}

impl ShuffleRuntime for ExecutorShuffleRuntime {
    fn read(
        &self,
        blocks: Vec<BlockLocation>,
        schema: SchemaRef,
        fetch: FetchSettings,
    ) -> Result<SendableRecordBatchStream> {
        let capacity = kib(fetch.max_bytes_in_flight);
        let budget = Arc::new(Semaphore::new(capacity as usize));
        let reads = blocks
            .into_iter()
            .map(|block| -> Result<BlockRead> {
                if block.executor_id == self.executor_id {
                    let dir =
                        crate::work_dir::map_output_dir(&self.work_dir, &block_proto(&block))?;
                    return Ok(futures::future::ready(Ok(local_block(dir, block))).boxed());
                }
                let client = self.client(&block.address)?;
                let permits = kib(block.bytes).min(capacity);
                Ok(remote_block(client, block, Arc::clone(&budget), permits, fetch).boxed())
            })
            .collect::<Result<Vec<_>>>()?;
        // `buffered` polls the reads in order, so they take their share of
        // the budget in map order: the block read next always gets its
        // share before any block after it.
        let stream = futures::stream::iter(reads)
            .buffered(MAX_REQUESTS_IN_FLIGHT)
            .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// A block of this executor, streamed from its committed output.
fn local_block(dir: PathBuf, block: BlockLocation) -> BoxStream<'static, Result<RecordBatch>> {
    let fut = async move {
        let index = ShuffleIndex::read(&dir).await.map_err(|e| {
            DataFusionError::from(FetchFailed::missing(
                &block,
                format!("{}: {e}", dir.display()),
            ))
        })?;
        if index.attempt != block.map_attempt {
            return Err(FetchFailed::missing(
                &block,
                format!(
                    "the committed output is attempt {}'s, not attempt {}'s",
                    index.attempt, block.map_attempt
                ),
            )
            .into());
        }
        let Some(indexed) = index.blocks.get(block.reduce_partition) else {
            return Err(FetchFailed::missing(&block, "no such reduce partition").into());
        };
        let chunks = segment_chunks(
            dir.join(DATA_FILE),
            indexed.segments.clone(),
            minispark_proto::DATA_CHUNK_SIZE,
        );
        Ok::<_, DataFusionError>(decode_chunk_stream(chunks, move |e: std::io::Error| {
            FetchFailed::missing(&block, format!("{}: {e}", dir.display())).into()
        }))
    };
    futures::stream::once(fut).try_flatten().boxed()
}

/// A block of another executor: waits for its share of the in-flight
/// budget, fetches it whole (with retries) in a task of its own, and holds
/// the share until its batches are read.
async fn remote_block(
    client: ExecutorClient<AuthChannel>,
    block: BlockLocation,
    budget: Arc<Semaphore>,
    permits: u32,
    fetch: FetchSettings,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let permit: OwnedSemaphorePermit = budget
        .acquire_many_owned(permits)
        .await
        .map_err(|e| DataFusionError::Internal(format!("shuffle fetch budget closed: {e}")))?;
    let wire = block_proto(&block);
    let fetching = tokio::spawn(async move {
        let mut client = client;
        fetch_block(&mut client, &wire, fetch.max_retries, |n| fetch.backoff(n)).await
    });
    // The task reading this block was cancelled: stop fetching it.
    let abort = fetching.abort_handle();
    let _abort = AbortOnDrop(Some(abort));
    let fetched = fetching
        .await
        .map_err(|e| DataFusionError::Execution(format!("shuffle fetch task failed: {e}")))?;
    let chunks = match fetched {
        Ok(chunks) => chunks,
        Err(BlockFetchError::Missing(status)) => {
            return Err(FetchFailed::missing(&block, status.message()).into());
        }
        Err(e @ BlockFetchError::Failed { .. }) => {
            return Err(FetchFailed::unreachable(&block, e).into());
        }
    };
    let chunks = futures::stream::iter(chunks.into_iter().map(Ok::<_, std::convert::Infallible>));
    let batches = decode_chunk_stream(chunks, |e| match e {});
    // The share of the budget is given back when the batches are read.
    Ok(batches
        .map(move |batch| {
            let _held = &permit;
            batch
        })
        .boxed())
}

/// Aborts a spawned task when dropped, unless it was taken.
struct AbortOnDrop(Option<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}
