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
//! results stay deterministic. A try that hears nothing from its executor
//! for `minispark.shuffle.io.connectionTimeout` fails and is retried.
//!
//! A task reads through a [`TaskShuffleRuntime`]: fetched blocks not yet
//! read are held in the task's memory pool as `ShuffleReader[...]`
//! (reserved before the fetch, in map order; see [`FetchMemory`]), and a
//! broadcast stage's output comes from the executor's
//! [`crate::broadcast_cache`], read once per executor.
//!
//! A block that cannot be read fails the task with a typed
//! [`FetchFailed`]: *missing* when its executor answered that it does not
//! have it (or a local block's files are gone), *unreachable* when its
//! executor could not be reached after the retries. The driver recomputes a
//! missing block's map output; see `minispark_planner::exchange::FetchFailed`
//! for the rest.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};
use minispark_planner::exchange::{BlockLocation, FetchFailed, FetchSettings, ShuffleRuntime};
use minispark_planner::ipc::decode_chunk_stream;
use minispark_proto::block_fetch::{BlockFetchError, fetch_block};
use minispark_proto::executor_client::ExecutorClient;
use minispark_proto::{AuthChannel, Security, ShuffleBlock};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::broadcast_cache::BroadcastCache;
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
    /// Broadcast build sides read once and shared by the executor's tasks.
    pub broadcasts: BroadcastCache,
    /// The executor's memory pool (reads outside a task account here).
    pool: Arc<dyn MemoryPool>,
}

impl ExecutorShuffleRuntime {
    /// `pool`: the executor's memory pool, where shared broadcast build
    /// sides are accounted.
    pub fn new(
        executor_id: String,
        work_dir: PathBuf,
        security: Security,
        pool: Arc<dyn MemoryPool>,
    ) -> Self {
        Self {
            executor_id,
            work_dir,
            clients: Mutex::default(),
            security,
            broadcasts: BroadcastCache::new(Arc::clone(&pool)),
            pool,
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
        self.read_in(blocks, schema, fetch, &Arc::clone(&self.pool))
    }
}

impl ExecutorShuffleRuntime {
    /// [`ShuffleRuntime::read`], with the fetched blocks' bytes accounted in
    /// `pool` (a task's) while they wait to be read.
    pub fn read_in(
        &self,
        blocks: Vec<BlockLocation>,
        schema: SchemaRef,
        fetch: FetchSettings,
        pool: &Arc<dyn MemoryPool>,
    ) -> Result<SendableRecordBatchStream> {
        let capacity = kib(fetch.max_bytes_in_flight);
        let budget = Arc::new(Semaphore::new(capacity as usize));
        let memory = blocks.first().map(|b| {
            Arc::new(FetchMemory::new(
                pool,
                format!(
                    "ShuffleReader[job={}, stage={}, reduce={}]",
                    b.job_id, b.stage_id, b.reduce_partition
                ),
            ))
        });
        let mut remote = 0;
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
                let memory = memory.clone().expect("a block was read");
                let turn = remote;
                remote += 1;
                let budget = Arc::clone(&budget);
                Ok(async move {
                    // The block's bytes are reserved before it is fetched.
                    let held = memory.reserve(turn, block.bytes as usize).await;
                    remote_block(client, block, budget, permits, fetch, held).await
                }
                .boxed())
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

/// The shuffle reads of one task: the executor's, and what the task did
/// (installed in the task's session config).
#[derive(Debug)]
pub struct TaskShuffleRuntime {
    executor: Arc<ExecutorShuffleRuntime>,
    /// The task's memory pool: fetched blocks are accounted in it.
    pool: Arc<dyn MemoryPool>,
    /// Broadcast build sides this task read itself, rather than finding
    /// them read by another task of the executor.
    broadcast_fetches: Arc<AtomicU64>,
}

impl TaskShuffleRuntime {
    pub fn new(executor: Arc<ExecutorShuffleRuntime>, pool: Arc<dyn MemoryPool>) -> Self {
        Self {
            executor,
            pool,
            broadcast_fetches: Arc::default(),
        }
    }

    /// Broadcast build sides this task read itself.
    pub fn broadcast_fetches(&self) -> u64 {
        self.broadcast_fetches.load(Ordering::SeqCst)
    }
}

impl ShuffleRuntime for TaskShuffleRuntime {
    fn read(
        &self,
        blocks: Vec<BlockLocation>,
        schema: SchemaRef,
        fetch: FetchSettings,
    ) -> Result<SendableRecordBatchStream> {
        self.executor.read_in(blocks, schema, fetch, &self.pool)
    }

    /// The build side from the executor's [`BroadcastCache`]: read by the
    /// first task of the stage on this executor, shared by the others.
    fn read_broadcast(
        &self,
        blocks: Vec<BlockLocation>,
        schema: SchemaRef,
        fetch: FetchSettings,
    ) -> Result<SendableRecordBatchStream> {
        if blocks.is_empty() {
            return self.read(blocks, schema, fetch);
        }
        let executor = Arc::clone(&self.executor);
        let pool = Arc::clone(&self.pool);
        let counter = Arc::clone(&self.broadcast_fetches);
        let read_schema = Arc::clone(&schema);
        let build = async move {
            let (build, read_here) = executor
                .broadcasts
                .get_or_read(&blocks, || {
                    let read = executor.read_in(blocks.clone(), read_schema, fetch, &pool);
                    async move { read }
                })
                .await?;
            if read_here {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            let batches = build.batches.clone();
            // The build side stays held while its batches are read.
            Ok::<_, DataFusionError>(futures::stream::iter(batches).map(move |b| {
                let _held = &build;
                Ok(b)
            }))
        };
        let stream = futures::stream::once(build).try_flatten();
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
    held: HeldMemory,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let permit: OwnedSemaphorePermit = budget
        .acquire_many_owned(permits)
        .await
        .map_err(|e| DataFusionError::Internal(format!("shuffle fetch budget closed: {e}")))?;
    let wire = block_proto(&block);
    let fetching = tokio::spawn(async move {
        let mut client = client;
        fetch_block(
            &mut client,
            &wire,
            fetch.max_retries,
            |n| fetch.backoff(n),
            fetch.connection_timeout,
        )
        .await
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
    // The share of the budget and the memory are given back when the
    // batches are read.
    Ok(batches
        .map(move |batch| {
            let _held = (&permit, &held);
            batch
        })
        .boxed())
}

/// A task's memory for the remote blocks it fetched and has not read yet:
/// a consumer `ShuffleReader[job, stage, reduce]` of the task's pool.
/// Blocks reserve their bytes before they are fetched, one after the other
/// in map order (the order they are read in); a block that does not fit
/// waits until blocks before it are read. When the task holds no other
/// block, the block is taken anyway (the task cannot go on without it):
/// accounted, so that the operators that can spill make room, and named
/// among the largest consumers if an allocation fails. So a task holds at
/// most one block beyond what the pool grants, and its fetches shrink to
/// one at a time when memory is short.
#[derive(Debug)]
struct FetchMemory {
    /// Holds nothing itself: blocks take reservations of its consumer.
    consumer: MemoryReservation,
    state: Mutex<FetchMemoryState>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct FetchMemoryState {
    /// The remote block (in map order) whose turn it is to reserve.
    turn: usize,
    /// Bytes reserved by blocks not yet read.
    held: usize,
}

impl FetchMemory {
    fn new(pool: &Arc<dyn MemoryPool>, name: String) -> Self {
        Self {
            consumer: MemoryConsumer::new(name).register(pool),
            state: Mutex::default(),
            changed: Notify::new(),
        }
    }

    /// Reserves `bytes` for remote block number `turn` (0, 1, ... in map
    /// order), after the blocks before it.
    async fn reserve(self: &Arc<Self>, turn: usize, bytes: usize) -> HeldMemory {
        /// What to do after looking at the state.
        enum Next {
            Held(MemoryReservation),
            /// Wait for a block before this one to be read (or for the turn).
            WaitForRelease,
        }
        loop {
            // Registered before the state is looked at: no wake-up is lost.
            let changed = self.changed.notified();
            let next = {
                let mut state = self.state.lock().expect("fetch memory lock");
                if state.turn != turn {
                    Next::WaitForRelease
                } else {
                    let reservation = self.consumer.new_empty();
                    match reservation.try_grow(bytes) {
                        Ok(()) => {
                            state.turn += 1;
                            state.held += bytes;
                            Next::Held(reservation)
                        }
                        Err(_) if state.held == 0 => {
                            // Nothing of this task's to wait for.
                            reservation.grow(bytes);
                            state.turn += 1;
                            state.held += bytes;
                            Next::Held(reservation)
                        }
                        Err(_) => Next::WaitForRelease,
                    }
                }
            };
            match next {
                Next::Held(reservation) => {
                    self.changed.notify_waiters();
                    return HeldMemory {
                        memory: Arc::clone(self),
                        reservation,
                    };
                }
                Next::WaitForRelease => changed.await,
            }
        }
    }
}

/// A fetched block's bytes in its task's pool, given back when dropped.
#[derive(Debug)]
struct HeldMemory {
    memory: Arc<FetchMemory>,
    reservation: MemoryReservation,
}

impl Drop for HeldMemory {
    fn drop(&mut self) {
        let bytes = self.reservation.free();
        self.memory.state.lock().expect("fetch memory lock").held -= bytes;
        self.memory.changed.notify_waiters();
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use datafusion::execution::memory_pool::GreedyMemoryPool;

    use super::*;

    /// Fetched blocks take their bytes from the task's pool in map order,
    /// wait for blocks before them to be read when the pool is full, and
    /// give them back when read; a block alone is taken even beyond the
    /// pool, accounted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fetched_blocks_wait_for_memory_in_map_order() {
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(100));
        let memory = Arc::new(FetchMemory::new(&pool, "ShuffleReader[test]".into()));
        let first = memory.reserve(0, 60).await;
        assert_eq!(pool.reserved(), 60);
        let m = Arc::clone(&memory);
        let third = tokio::spawn(async move { m.reserve(2, 10).await });
        let m = Arc::clone(&memory);
        let second = tokio::spawn(async move { m.reserve(1, 60).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!second.is_finished(), "60 + 60 bytes in a pool of 100");
        assert!(!third.is_finished(), "its turn is after the second's");
        assert_eq!(pool.reserved(), 60);
        drop(first);
        let limit = Duration::from_secs(10);
        let second = tokio::time::timeout(limit, second).await.unwrap().unwrap();
        let third = tokio::time::timeout(limit, third).await.unwrap().unwrap();
        assert_eq!(pool.reserved(), 70);
        drop((second, third));
        assert_eq!(pool.reserved(), 0);
        let alone = memory.reserve(3, 500).await;
        assert_eq!(pool.reserved(), 500);
        drop(alone);
        assert_eq!(pool.reserved(), 0);
    }
}
