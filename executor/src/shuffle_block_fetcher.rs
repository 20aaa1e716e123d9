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
//!   alone), at most [`MAX_REQUESTS_IN_FLIGHT`] at a time; a block larger
//!   than `minispark.network.maxRemoteBlockSizeFetchToMem`, or one the
//!   task's memory cannot hold, is streamed to a file in the work dir and
//!   read from there in chunks (Spark's fetch to disk). A fetch that
//!   fails for a passing reason is retried with backoff
//!   (`minispark.shuffle.io.maxRetries`, `minispark.shuffle.io.retryWait`,
//!   see `minispark_proto::block_fetch`).
//!
//! Batches come out in map order whatever order the fetches finish in, so
//! results stay deterministic. A try that hears nothing from its executor
//! for `minispark.shuffle.io.connectionTimeout` fails and is retried.
//!
//! A task reads through a [`TaskShuffleRuntime`]: fetched blocks not yet
//! decoded are held in the task's memory pool as `ShuffleReader[...]`
//! (reserved in map order once a fetch has its share of the in-flight
//! budget, given back chunk by chunk as the block is decoded; see
//! [`FetchMemory`]), and a
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
use minispark_proto::block_fetch::{
    BlockFetchError, ChunkSink, FetchIntoError, fetch_block, fetch_block_into,
};
use minispark_proto::executor_client::ExecutorClient;
use minispark_proto::{AuthChannel, Security, ShuffleBlock};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::broadcast_cache::BroadcastCache;
use crate::broadcast_hash_table::BroadcastHashTables;
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
    /// Hash tables of broadcast joins built once and probed by the
    /// executor's tasks.
    pub hash_tables: BroadcastHashTables,
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
            hash_tables: BroadcastHashTables::default(),
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
        self.read_in(
            blocks,
            schema,
            fetch,
            &Arc::clone(&self.pool),
            &Arc::default(),
        )
    }
}

impl ExecutorShuffleRuntime {
    /// [`ShuffleRuntime::read`], with the fetched blocks' bytes accounted in
    /// `pool` (a task's) while they wait to be read.
    /// Bytes fetched to disk are added to `to_disk`.
    pub fn read_in(
        &self,
        blocks: Vec<BlockLocation>,
        schema: SchemaRef,
        fetch: FetchSettings,
        pool: &Arc<dyn MemoryPool>,
        to_disk: &Arc<AtomicU64>,
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
                // Too large for memory: to disk, without a memory turn.
                let sink = if block.bytes > fetch.max_block_in_memory {
                    Sink::Disk
                } else {
                    remote += 1;
                    Sink::MemoryOrDisk { turn: remote - 1 }
                };
                let fetched = Fetched {
                    budget: Arc::clone(&budget),
                    permits,
                    memory,
                    work_dir: self.work_dir.clone(),
                    to_disk: Arc::clone(to_disk),
                };
                Ok(remote_block(client, block, fetch, sink, fetched).boxed())
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
    /// Bytes of remote blocks this task fetched to disk.
    remote_bytes_read_to_disk: Arc<AtomicU64>,
}

impl TaskShuffleRuntime {
    pub fn new(executor: Arc<ExecutorShuffleRuntime>, pool: Arc<dyn MemoryPool>) -> Self {
        Self {
            executor,
            pool,
            broadcast_fetches: Arc::default(),
            remote_bytes_read_to_disk: Arc::default(),
        }
    }

    /// Bytes of other executors' blocks this task fetched to a file.
    pub fn remote_bytes_read_to_disk(&self) -> u64 {
        self.remote_bytes_read_to_disk.load(Ordering::SeqCst)
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
        self.executor.read_in(
            blocks,
            schema,
            fetch,
            &self.pool,
            &self.remote_bytes_read_to_disk,
        )
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
        let to_disk = Arc::clone(&self.remote_bytes_read_to_disk);
        let read_schema = Arc::clone(&schema);
        let build = async move {
            let (build, read_here) = executor
                .broadcasts
                .get_or_read(&blocks, || {
                    let read =
                        executor.read_in(blocks.clone(), read_schema, fetch, &pool, &to_disk);
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

/// Where a remote block goes as it is fetched.
enum Sink {
    /// Larger than `minispark.network.maxRemoteBlockSizeFetchToMem`: a file.
    Disk,
    /// Memory, reserved as remote in-memory block number `turn` of the
    /// task; a file when the task's memory cannot hold it (see
    /// [`FetchMemory::reserve`]).
    MemoryOrDisk { turn: usize },
}

/// What a remote block's fetch shares with the task's other fetches.
struct Fetched {
    budget: Arc<Semaphore>,
    permits: u32,
    memory: Arc<FetchMemory>,
    work_dir: PathBuf,
    to_disk: Arc<AtomicU64>,
}

/// A block of another executor: waits for its share of the in-flight
/// budget, then (in memory) for its bytes in the task's memory, fetches it
/// whole (with retries) in a task of its own, and holds the share until its
/// batches are read. Its memory is given back chunk by chunk as the chunks
/// are decoded: from then on the decoded batches are the memory of whoever
/// holds them (a hash join's build side counts them as its own), so no byte
/// is counted twice. A block fetched to disk is streamed into a file in the
/// work dir as it arrives and read back in chunks; the file is removed when
/// the block has been read (or the task is cancelled).
async fn remote_block(
    client: ExecutorClient<AuthChannel>,
    block: BlockLocation,
    fetch: FetchSettings,
    sink: Sink,
    shared: Fetched,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    // The budget first: the blocks waiting for it reserve nothing (they
    // take it in map order, as `buffered` polls them in order and the
    // semaphore is fair, so the memory turns below never wait on a block
    // that has no share).
    let permit: OwnedSemaphorePermit = shared
        .budget
        .acquire_many_owned(shared.permits)
        .await
        .map_err(|e| DataFusionError::Internal(format!("shuffle fetch budget closed: {e}")))?;
    let held = match sink {
        Sink::Disk => None,
        Sink::MemoryOrDisk { turn } => shared.memory.reserve(turn, block.bytes as usize).await,
    };
    let batches = match held {
        Some(held) => fetch_to_memory(client, &block, fetch, held).await?,
        None => fetch_to_disk(client, &block, fetch, &shared.work_dir, &shared.to_disk).await?,
    };
    // The share of the budget is given back when the batches are read.
    Ok(batches
        .map(move |batch| {
            let _permit = &permit;
            batch
        })
        .boxed())
}

/// The fetch failure of `block` for a fetch error.
fn fetch_failed(block: &BlockLocation, e: BlockFetchError) -> DataFusionError {
    match e {
        BlockFetchError::Missing(status) => FetchFailed::missing(block, status.message()).into(),
        e @ BlockFetchError::Failed { .. } => FetchFailed::unreachable(block, e).into(),
    }
}

/// Runs `fetch` in a task of its own, aborted if the reading task is
/// cancelled (the future dropped).
async fn spawned<T: Send + 'static>(
    fetch: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T> {
    let fetching = tokio::spawn(fetch);
    let _abort = AbortOnDrop(Some(fetching.abort_handle()));
    fetching
        .await
        .map_err(|e| DataFusionError::Execution(format!("shuffle fetch task failed: {e}")))
}

/// `block` fetched whole into memory held as `held`, which is given back
/// chunk by chunk as the chunks are decoded.
async fn fetch_to_memory(
    client: ExecutorClient<AuthChannel>,
    block: &BlockLocation,
    fetch: FetchSettings,
    mut held: HeldMemory,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let wire = block_proto(block);
    let fetched = spawned(async move {
        let mut client = client;
        fetch_block(
            &mut client,
            &wire,
            fetch.max_retries,
            |n| fetch.backoff(n),
            fetch.connection_timeout,
        )
        .await
    })
    .await?;
    let chunks = fetched.map_err(|e| fetch_failed(block, e))?;
    let chunks = futures::stream::iter(chunks.into_iter().map(move |chunk| {
        held.release(chunk.len());
        Ok::<_, std::convert::Infallible>(chunk)
    }));
    Ok(decode_chunk_stream(chunks, |e| match e {}))
}

/// A file the chunks of one fetch try are written to (a retry starts it
/// over). The writes are plain blocking writes of one chunk (at most
/// 1 MiB) each, to the page cache.
struct FileSink {
    file: std::fs::File,
    bytes: u64,
}

impl ChunkSink for FileSink {
    fn restart(&mut self) -> std::io::Result<()> {
        use std::io::Seek;
        self.file.set_len(0)?;
        self.file.seek(std::io::SeekFrom::Start(0))?;
        self.bytes = 0;
        Ok(())
    }

    fn put(&mut self, chunk: Vec<u8>) -> std::io::Result<()> {
        use std::io::Write;
        self.file.write_all(&chunk)?;
        self.bytes += chunk.len() as u64;
        Ok(())
    }
}

/// Prefix of the files remote blocks are fetched to, in the work dir (see
/// [`crate::work_dir`], which removes those a dead executor left).
pub const FETCHED_FILE_PREFIX: &str = "fetched-";

/// `block` streamed into a file in `work_dir` as it arrives, then read
/// from the file in chunks; the file is removed when the batches are read
/// or dropped.
async fn fetch_to_disk(
    client: ExecutorClient<AuthChannel>,
    block: &BlockLocation,
    fetch: FetchSettings,
    work_dir: &std::path::Path,
    to_disk: &AtomicU64,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let local = |e: std::io::Error, path: &std::path::Path| {
        DataFusionError::Execution(format!(
            "cannot keep shuffle block {} of stage {} (map {}, from {}) in {}: {e}",
            block.reduce_partition,
            block.stage_id,
            block.map_partition,
            block.executor_id,
            path.display()
        ))
    };
    let (file, path) = tempfile::Builder::new()
        .prefix(FETCHED_FILE_PREFIX)
        .suffix(".tmp")
        .tempfile_in(work_dir)
        .map_err(|e| local(e, work_dir))?
        .into_parts();
    let wire = block_proto(block);
    let fetched = spawned(async move {
        let mut client = client;
        let mut sink = FileSink { file, bytes: 0 };
        let result = fetch_block_into(
            &mut client,
            &wire,
            fetch.max_retries,
            |n| fetch.backoff(n),
            fetch.connection_timeout,
            &mut sink,
        )
        .await;
        (result, sink.bytes)
    })
    .await?;
    let bytes = match fetched {
        (Ok(()), bytes) => bytes,
        (Err(FetchIntoError::Fetch(e)), _) => return Err(fetch_failed(block, e)),
        (Err(FetchIntoError::Sink(e)), _) => return Err(local(e, &path)),
    };
    to_disk.fetch_add(bytes, Ordering::SeqCst);
    let chunks = segment_chunks(
        path.to_path_buf(),
        vec![(0, bytes)],
        minispark_proto::DATA_CHUNK_SIZE,
    );
    let shown = path.display().to_string();
    let batches = decode_chunk_stream(chunks, move |e: std::io::Error| {
        DataFusionError::Execution(format!("reading fetched shuffle block {shown}: {e}"))
    });
    // The file goes when the batches have been read or dropped.
    Ok(batches
        .map(move |batch| {
            let _file = &path;
            batch
        })
        .boxed())
}

/// A task's memory for the remote blocks it fetched and has not read yet:
/// a consumer `ShuffleReader[job, stage, reduce]` of the task's pool.
/// Blocks reserve their bytes before they are fetched, one after the other
/// in map order (the order they are read in), and give them back as their
/// chunks are decoded; a block that does not fit waits until blocks before
/// it are read. When the task holds no other block and the pool still
/// cannot hold it, the block is fetched to disk instead. So a task never
/// holds fetched bytes beyond what the pool grants, and its fetches shrink
/// to one at a time when memory is short.
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
    /// order), after the blocks before it; `None`: fetch it to disk.
    async fn reserve(self: &Arc<Self>, turn: usize, bytes: usize) -> Option<HeldMemory> {
        /// What to do after looking at the state.
        enum Next {
            Held(MemoryReservation),
            /// The pool cannot hold the block and the task holds no other
            /// block to wait for: fetch it to disk.
            ToDisk,
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
                            state.turn += 1;
                            Next::ToDisk
                        }
                        Err(_) => Next::WaitForRelease,
                    }
                }
            };
            match next {
                Next::Held(reservation) => {
                    self.changed.notify_waiters();
                    return Some(HeldMemory {
                        memory: Arc::clone(self),
                        reservation,
                    });
                }
                Next::ToDisk => {
                    self.changed.notify_waiters();
                    return None;
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

impl HeldMemory {
    /// Gives back `bytes` of the block (read), keeping the rest.
    fn release(&mut self, bytes: usize) {
        let bytes = bytes.min(self.reservation.size());
        self.reservation.shrink(bytes);
        self.memory.state.lock().expect("fetch memory lock").held -= bytes;
        self.memory.changed.notify_waiters();
    }
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
    /// give them back as they are read; a block alone that the pool cannot
    /// hold goes to disk.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fetched_blocks_wait_for_memory_in_map_order() {
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(100));
        let memory = Arc::new(FetchMemory::new(&pool, "ShuffleReader[test]".into()));
        let first = memory.reserve(0, 60).await.unwrap();
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
        assert!(second.is_some() && third.is_some());
        assert_eq!(pool.reserved(), 70);
        drop((second, third));
        assert_eq!(pool.reserved(), 0);
        // A block read in part gives back what was read: a block that did
        // not fit beside it fits then.
        let mut partly = memory.reserve(3, 80).await.unwrap();
        let m = Arc::clone(&memory);
        let next = tokio::spawn(async move { m.reserve(4, 50).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!next.is_finished(), "80 + 50 bytes in a pool of 100");
        partly.release(30);
        let next = tokio::time::timeout(limit, next).await.unwrap().unwrap();
        assert!(next.is_some());
        assert_eq!(pool.reserved(), 100);
        partly.release(1000);
        assert_eq!(pool.reserved(), 50, "no more than the block is given back");
        drop((partly, next));
        assert_eq!(pool.reserved(), 0);
        assert!(
            memory.reserve(5, 500).await.is_none(),
            "500 bytes in a pool of 100, no block of the task's held: to disk"
        );
        assert_eq!(pool.reserved(), 0);
        let after = memory.reserve(6, 40).await;
        assert!(after.is_some(), "the next block's turn came");
        drop(after);
        assert_eq!(pool.reserved(), 0);
    }
}
