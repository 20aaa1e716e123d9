//! Shuffle storage on the executor: writing map output, reading it back
//! locally or from another executor.
//!
//! Layout of the work dir (ids are checked in [`crate::work_dir`]):
//!
//! ```text
//! <work-dir>/<job-id>/stage-<s>/map-<m>-reduce-<r>.arrow   one Arrow IPC stream per block
//! ```
//!
//! A block that would be empty is not written; the map task reports its row
//! count as 0 and readers skip it.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::BatchCoalescer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::StreamWriter;
use datafusion::common::{DataFusionError, Result, exec_datafusion_err};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{StreamExt, TryStreamExt};
use minispark_functions::hash::spark_murmur3::partition_ids;
use minispark_planner::config::ShuffleCompression;
use minispark_planner::exchange::{
    BlockLocation, BlockStats, ExchangeKind, FetchFailed, HotKey, HotKeySampler, ShuffleRuntime,
};
use minispark_planner::ipc::{ChunkDecoder, decode_chunk_stream, write_options};
use minispark_proto::executor_client::ExecutorClient;
use minispark_proto::{AuthChannel, Security, ShuffleBlock};

/// Rows per batch written to a block.
const BLOCK_BATCH_ROWS: usize = 8192;

/// How a map task splits its rows into blocks.
pub struct MapOutputSpec {
    pub kind: ExchangeKind,
    pub num_partitions: usize,
    pub hash_exprs: Vec<Arc<dyn PhysicalExpr>>,
    pub compression: ShuffleCompression,
}

struct BlockWriter {
    coalescer: BatchCoalescer,
    writer: Option<StreamWriter<BufWriter<File>>>,
    path: PathBuf,
    rows: u64,
}

impl BlockWriter {
    fn write_completed(
        &mut self,
        schema: &SchemaRef,
        compression: ShuffleCompression,
    ) -> Result<()> {
        while let Some(batch) = self.coalescer.next_completed_batch() {
            if self.writer.is_none() {
                let file = File::create(&self.path).map_err(|e| {
                    exec_datafusion_err!("cannot create shuffle file {}: {e}", self.path.display())
                })?;
                self.writer = Some(StreamWriter::try_new_with_options(
                    BufWriter::with_capacity(1 << 16, file),
                    schema,
                    write_options(compression)?,
                )?);
            }
            self.rows += batch.num_rows() as u64;
            self.writer.as_mut().expect("opened above").write(&batch)?;
        }
        Ok(())
    }
}

/// Runs `stream` (one partition of a stage plan) to completion, writing its
/// rows as blocks of map task `map_partition`. Returns one entry per block.
pub async fn write_map_output(
    mut stream: SendableRecordBatchStream,
    spec: &MapOutputSpec,
    dir: &Path,
    map_partition: usize,
) -> Result<(Vec<BlockStats>, Vec<HotKey>)> {
    std::fs::create_dir_all(dir)
        .map_err(|e| exec_datafusion_err!("cannot create shuffle dir {}: {e}", dir.display()))?;
    let schema = stream.schema();
    let blocks = spec.kind.blocks_per_map(spec.num_partitions);
    let mut writers: Vec<BlockWriter> = (0..blocks)
        .map(|r| BlockWriter {
            coalescer: BatchCoalescer::new(Arc::clone(&schema), BLOCK_BATCH_ROWS),
            writer: None,
            path: dir.join(format!("map-{map_partition}-reduce-{r}.arrow")),
            rows: 0,
        })
        .collect();

    let mut hash_buf = Vec::new();
    let mut ids = Vec::new();
    let mut hot_keys = (spec.kind == ExchangeKind::Hash)
        .then(|| HotKeySampler::new(key_names(&spec.hash_exprs), spec.num_partitions));
    let mut batch_index = map_partition;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        match spec.kind {
            ExchangeKind::Hash => {
                let keys = spec
                    .hash_exprs
                    .iter()
                    .map(|e| e.evaluate(&batch)?.into_array(batch.num_rows()))
                    .collect::<Result<Vec<_>>>()?;
                partition_ids(&keys, batch.num_rows(), blocks, &mut hash_buf, &mut ids)?;
                if let Some(sampler) = hot_keys.as_mut() {
                    sampler.observe(&keys, &hash_buf)?;
                }
                push_partitioned(&batch, &ids, &mut writers)?;
            }
            ExchangeKind::RoundRobin => {
                writers[batch_index % blocks].coalescer.push_batch(batch)?;
                batch_index += 1;
            }
            ExchangeKind::Single | ExchangeKind::Broadcast | ExchangeKind::Forward => {
                writers[0].coalescer.push_batch(batch)?;
            }
        }
        for w in &mut writers {
            w.write_completed(&schema, spec.compression)?;
        }
    }

    let mut stats = Vec::with_capacity(blocks);
    for (r, mut w) in writers.into_iter().enumerate() {
        w.coalescer.finish_buffered_batch()?;
        w.write_completed(&schema, spec.compression)?;
        let bytes = match w.writer.take() {
            Some(mut writer) => {
                writer.finish()?;
                let mut inner = writer.into_inner()?;
                std::io::Write::flush(&mut inner)?;
                drop(inner);
                std::fs::metadata(&w.path).map(|m| m.len()).unwrap_or(0)
            }
            None => 0,
        };
        stats.push(BlockStats {
            reduce_partition: r,
            rows: w.rows,
            bytes,
        });
    }
    Ok((
        stats,
        hot_keys.map(HotKeySampler::finish).unwrap_or_default(),
    ))
}

/// Names of the shuffle keys for people: a column's name, or the
/// expression's text.
fn key_names(exprs: &[Arc<dyn PhysicalExpr>]) -> Vec<String> {
    exprs
        .iter()
        .map(|e| match e.downcast_ref::<Column>() {
            Some(c) => c.name().to_string(),
            None => e.to_string(),
        })
        .collect()
}

/// Splits `batch` by partition id and pushes each part to its block.
fn push_partitioned(batch: &RecordBatch, ids: &[u32], writers: &mut [BlockWriter]) -> Result<()> {
    let n = writers.len();
    // Counting sort of row indices by partition: one pass to count, one to place.
    let mut counts = vec![0u32; n + 1];
    for &p in ids {
        counts[p as usize + 1] += 1;
    }
    for i in 0..n {
        counts[i + 1] += counts[i];
    }
    let mut order = vec![0u32; ids.len()];
    let mut next = counts.clone();
    for (row, &p) in ids.iter().enumerate() {
        order[next[p as usize] as usize] = row as u32;
        next[p as usize] += 1;
    }
    let order = UInt32Array::from(order);
    for (p, writer) in writers.iter_mut().enumerate() {
        let (start, end) = (counts[p] as usize, counts[p + 1] as usize);
        if start == end {
            continue;
        }
        let indices = order.slice(start, end - start);
        writer
            .coalescer
            .push_batch_with_indices(batch.clone(), &indices)?;
    }
    Ok(())
}

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

/// An error reading another executor's output (or a local block file): a
/// typed [`FetchFailed`], so the driver recomputes that output rather than
/// blame the task.
fn fetch_failed(block: &BlockLocation, msg: impl std::fmt::Display) -> DataFusionError {
    FetchFailed::new(block, msg).into()
}

fn block_proto(b: &BlockLocation) -> ShuffleBlock {
    ShuffleBlock {
        job_id: b.job_id.clone(),
        stage_id: b.stage_id as u32,
        map_partition: b.map_partition as u32,
        reduce_partition: b.reduce_partition as u32,
    }
}

impl ExecutorShuffleRuntime {
    /// Every batch of one block.
    fn read_block(
        &self,
        block: BlockLocation,
    ) -> Result<futures::stream::BoxStream<'static, Result<RecordBatch>>> {
        if block.executor_id == self.executor_id {
            let path = crate::work_dir::block_path(&self.work_dir, &block_proto(&block))?;
            let fut = async move {
                let bytes = tokio::fs::read(&path)
                    .await
                    .map_err(|e| fetch_failed(&block, format!("{}: {e}", path.display())))?;
                let mut decoder = ChunkDecoder::new();
                let batches = decoder.push(bytes::Bytes::from(bytes))?;
                decoder.finish()?;
                Ok::<_, DataFusionError>(futures::stream::iter(batches.into_iter().map(Ok)))
            };
            return Ok(futures::stream::once(fut).try_flatten().boxed());
        }
        let mut client = self.client(&block.address)?;
        let fut = async move {
            let chunks = client
                .fetch_partition(block_proto(&block))
                .await
                .map_err(|s| fetch_failed(&block, s.message()))?
                .into_inner()
                .map_ok(|chunk| chunk.data);
            Ok::<_, DataFusionError>(decode_chunk_stream(chunks, move |s: tonic::Status| {
                fetch_failed(&block, s.message())
            }))
        };
        Ok(futures::stream::once(fut).try_flatten().boxed())
    }
}

impl ShuffleRuntime for ExecutorShuffleRuntime {
    fn read(
        &self,
        blocks: Vec<BlockLocation>,
        schema: SchemaRef,
    ) -> Result<SendableRecordBatchStream> {
        let streams = blocks
            .into_iter()
            .map(|b| self.read_block(b))
            .collect::<Result<Vec<_>>>()?;
        // Blocks are read one after another, in map order.
        let stream = futures::stream::iter(streams).flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}
