//! Shuffle storage on the executor: the map side, which writes a task's
//! output as one data file and one index and commits it atomically.
//!
//! ```text
//!   rows ─▶ partition (hash / round robin / one block) ─▶ coalesce to 8192 rows
//!        ─▶ encode each block as an Arrow IPC stream, in memory
//!        ─▶ append encoded bytes to <attempt dir>/data when they reach 8 MiB, and at the end
//!        ─▶ <attempt dir>/index: each block's rows and byte ranges of data
//!        ─▶ rename <attempt dir> to map-<m>/: first commit wins
//! ```
//!
//! The layout is in [`crate::shuffle_index`], the commit in
//! [`crate::map_output_commit`], and the reduce side (local blocks streamed
//! from disk, remote ones fetched concurrently with retries) in
//! [`crate::shuffle_block_fetcher`]. A block that would be empty takes no
//! bytes; the map task reports its row count as 0 and readers skip it.
//!
//! Why one data file per map task, not one file per block: at 2 000 reduce
//! partitions a map task wrote 2 000 files, and a stage of M map tasks
//! 2 000 M; the measurement at the end of this file (see README) found the
//! data file plus index both faster to write and 1 000 times fewer files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::BatchCoalescer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::StreamWriter;
use datafusion::common::{Result, exec_datafusion_err};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use futures::StreamExt;
use minispark_functions::hash::spark_murmur3::partition_ids;
use minispark_planner::config::ShuffleCompression;
use minispark_planner::exchange::{BlockStats, ExchangeKind, HotKey, HotKeySampler, RangeSpec};
use minispark_planner::ipc::write_options;

use crate::map_output_commit::{AttemptDir, Commit, committed_dir};
pub use crate::shuffle_block_fetcher::ExecutorShuffleRuntime;
use crate::shuffle_index::{DATA_FILE, INDEX_FILE, IndexedBlock, ShuffleIndex};

/// Rows per batch written to a block.
const BLOCK_BATCH_ROWS: usize = 8192;

/// Encoded bytes a map task holds in memory before it appends them to its
/// data file.
const BUFFERED_BYTES: usize = 8 << 20;

/// How a map task splits its rows into blocks.
pub struct MapOutputSpec {
    pub kind: ExchangeKind,
    pub num_partitions: usize,
    pub hash_exprs: Vec<Arc<dyn PhysicalExpr>>,
    /// A range shuffle's keys and bounds (see `minispark_planner::exchange::range`).
    pub range: Option<RangeSpec>,
    pub compression: ShuffleCompression,
    /// The task's memory pool: the blocks' buffers are accounted in it
    /// (see [`write_map_output`]).
    pub memory: Arc<dyn MemoryPool>,
    /// Names the writer's memory consumer: `ShuffleWriter[<name>]`.
    pub name: String,
}

/// One block being written: rows waiting to fill a batch, and the block's
/// encoded bytes not yet in the data file.
struct BlockBuffer {
    coalescer: BatchCoalescer,
    writer: Option<StreamWriter<Vec<u8>>>,
    rows: u64,
    /// Where the block's bytes already in the data file are.
    segments: Vec<(u64, u64)>,
}

impl BlockBuffer {
    /// Encodes the batches the coalescer completed; returns the bytes added.
    fn encode_completed(
        &mut self,
        schema: &SchemaRef,
        compression: ShuffleCompression,
    ) -> Result<usize> {
        let before = self.buffered();
        while let Some(batch) = self.coalescer.next_completed_batch() {
            if self.writer.is_none() {
                self.writer = Some(StreamWriter::try_new_with_options(
                    Vec::new(),
                    schema,
                    write_options(compression)?,
                )?);
            }
            self.rows += batch.num_rows() as u64;
            self.writer.as_mut().expect("opened above").write(&batch)?;
        }
        Ok(self.buffered() - before)
    }

    fn buffered(&self) -> usize {
        self.writer.as_ref().map_or(0, |w| w.get_ref().len())
    }
}

/// The data file of an attempt being written.
struct DataFile {
    file: BufWriter<File>,
    len: u64,
    /// Encoded bytes held by the blocks, not yet appended.
    buffered: usize,
}

impl DataFile {
    /// Appends `block`'s encoded bytes as its next segment.
    fn append(&mut self, block: &mut BlockBuffer) -> Result<()> {
        let Some(writer) = block.writer.as_mut() else {
            return Ok(());
        };
        let bytes = std::mem::take(writer.get_mut());
        if bytes.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&bytes)
            .map_err(|e| exec_datafusion_err!("cannot write shuffle data: {e}"))?;
        block.segments.push((self.len, bytes.len() as u64));
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn append_all(&mut self, blocks: &mut [BlockBuffer]) -> Result<()> {
        for block in blocks.iter_mut() {
            self.append(block)?;
        }
        self.buffered = 0;
        Ok(())
    }
}

/// What a map task attempt ended with.
#[derive(Debug)]
pub struct WrittenMapOutput {
    /// The attempt whose output is committed: this one, or the one that
    /// committed first.
    pub attempt: u32,
    /// Whether this attempt's output is the committed one.
    pub committed_ours: bool,
    /// The committed output's blocks.
    pub blocks: Vec<BlockStats>,
    /// This attempt's heaviest keys (hash shuffles).
    pub hot_keys: Vec<HotKey>,
}

/// Runs `stream` (one partition of a stage plan) to completion, writing its
/// rows as the blocks of map task `map_partition`'s `attempt` into a
/// directory of the attempt's own under `stage_dir`, then commits it (see
/// [`crate::map_output_commit`]). `commit_delay` is a test-only wait before
/// the commit (see [`crate::shuffle_faults`]).
pub async fn write_map_output(
    stream: SendableRecordBatchStream,
    spec: &MapOutputSpec,
    stage_dir: &Path,
    map_partition: usize,
    attempt: u32,
    commit_delay: Option<Duration>,
) -> Result<WrittenMapOutput> {
    // Removed if this future ends (an error) or is dropped (the task
    // cancelled) before the commit.
    let dir = AttemptDir::new(stage_dir, map_partition, attempt);
    let (index, hot_keys) = write_attempt(stream, spec, dir.path(), map_partition, attempt).await?;
    if let Some(delay) = commit_delay {
        tracing::warn!(
            delay_ms = delay.as_millis() as u64,
            "injected fault: waiting before the commit"
        );
        tokio::time::sleep(delay).await;
    }
    let target = committed_dir(stage_dir, map_partition);
    Ok(match dir.commit(&target)? {
        Commit::Ours => WrittenMapOutput {
            attempt,
            committed_ours: true,
            blocks: index.stats(),
            hot_keys,
        },
        Commit::Theirs(theirs) => WrittenMapOutput {
            attempt: theirs.attempt,
            committed_ours: false,
            blocks: theirs.stats(),
            hot_keys,
        },
    })
}

/// Writes the attempt's data file and index into `dir`.
async fn write_attempt(
    mut stream: SendableRecordBatchStream,
    spec: &MapOutputSpec,
    dir: &Path,
    map_partition: usize,
    attempt: u32,
) -> Result<(ShuffleIndex, Vec<HotKey>)> {
    std::fs::create_dir_all(dir)
        .map_err(|e| exec_datafusion_err!("cannot create shuffle dir {}: {e}", dir.display()))?;
    let data_path = dir.join(DATA_FILE);
    let file = File::create(&data_path).map_err(|e| {
        exec_datafusion_err!("cannot create shuffle file {}: {e}", data_path.display())
    })?;
    let mut data = DataFile {
        file: BufWriter::with_capacity(1 << 20, file),
        len: 0,
        buffered: 0,
    };
    let schema = stream.schema();
    let blocks = spec.kind.blocks_per_map(spec.num_partitions);
    let mut buffers: Vec<BlockBuffer> = (0..blocks)
        .map(|_| BlockBuffer {
            coalescer: BatchCoalescer::new(Arc::clone(&schema), BLOCK_BATCH_ROWS),
            writer: None,
            rows: 0,
            segments: vec![],
        })
        .collect();

    // What the blocks hold in memory (rows waiting in their coalescers,
    // encoded bytes not yet in the data file), in the task's pool. When
    // the pool refuses more, everything buffered is written out (smaller
    // batches, same rows); only if even that does not fit does the task
    // fail, with an error naming the writer. It is not registered as a
    // consumer that can spill: DataFusion's fair pool would then split the
    // spilling operators' share with it, when it holds little and can
    // give all of it back by itself.
    let reservation =
        MemoryConsumer::new(format!("ShuffleWriter[{}]", spec.name)).register(&spec.memory);
    let mut hash_buf = Vec::new();
    let mut ids = Vec::new();
    let mut hot_keys = (spec.kind == ExchangeKind::Hash)
        .then(|| HotKeySampler::new(key_names(&spec.hash_exprs), spec.num_partitions));
    let range = match (&spec.range, spec.kind) {
        (Some(range), ExchangeKind::Range) => Some(range.partitioner()?),
        (None, ExchangeKind::Range) => {
            return Err(exec_datafusion_err!(
                "a range shuffle's writer came without its keys and bounds"
            ));
        }
        _ => None,
    };
    // Round robin starts at a different block in each map task.
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
                push_partitioned(&batch, &ids, &mut buffers)?;
            }
            // Row by row, as Spark's `repartition(n)`: every reduce
            // partition gets an equal share of each map task's rows.
            ExchangeKind::RoundRobin => {
                ids.clear();
                ids.extend((0..batch.num_rows()).map(|i| ((batch_index + i) % blocks) as u32));
                batch_index += batch.num_rows();
                push_partitioned(&batch, &ids, &mut buffers)?;
            }
            // Between the sampled bounds, as Spark's RangePartitioner.
            ExchangeKind::Range => {
                if let Some(range) = &range {
                    range.partition_ids(&batch, &mut ids)?;
                }
                push_partitioned(&batch, &ids, &mut buffers)?;
            }
            ExchangeKind::Single | ExchangeKind::Broadcast | ExchangeKind::Forward => {
                buffers[0].coalescer.push_batch(batch)?;
            }
        }
        for b in &mut buffers {
            data.buffered += b.encode_completed(&schema, spec.compression)?;
        }
        if data.buffered >= BUFFERED_BYTES {
            data.append_all(&mut buffers)?;
        }
        if reservation.try_resize(held(&data, &buffers)).is_err() {
            for b in &mut buffers {
                b.coalescer.finish_buffered_batch()?;
                data.buffered += b.encode_completed(&schema, spec.compression)?;
            }
            data.append_all(&mut buffers)?;
            reservation.try_resize(held(&data, &buffers))?;
        }
    }

    for b in &mut buffers {
        b.coalescer.finish_buffered_batch()?;
        b.encode_completed(&schema, spec.compression)?;
        if let Some(writer) = b.writer.as_mut() {
            writer.finish()?;
        }
        data.append(b)?;
    }
    data.file
        .flush()
        .map_err(|e| exec_datafusion_err!("cannot write shuffle data: {e}"))?;
    let index = ShuffleIndex {
        attempt,
        blocks: buffers
            .into_iter()
            .map(|b| IndexedBlock {
                rows: b.rows,
                segments: b.segments,
            })
            .collect(),
    };
    std::fs::write(dir.join(INDEX_FILE), index.encode())
        .map_err(|e| exec_datafusion_err!("cannot write shuffle index: {e}"))?;
    Ok((
        index,
        hot_keys.map(HotKeySampler::finish).unwrap_or_default(),
    ))
}

/// Bytes a map task's blocks hold in memory.
fn held(data: &DataFile, blocks: &[BlockBuffer]) -> usize {
    data.buffered + blocks.iter().map(|b| b.coalescer.size()).sum::<usize>()
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
fn push_partitioned(batch: &RecordBatch, ids: &[u32], blocks: &mut [BlockBuffer]) -> Result<()> {
    let n = blocks.len();
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
    for (p, block) in blocks.iter_mut().enumerate() {
        let (start, end) = (counts[p] as usize, counts[p + 1] as usize);
        if start == end {
            continue;
        }
        let indices = order.slice(start, end - start);
        block
            .coalescer
            .push_batch_with_indices(batch.clone(), &indices)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::execution::memory_pool::{GreedyMemoryPool, UnboundedMemoryPool};
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]))
    }

    fn batches(n: usize) -> Vec<RecordBatch> {
        (0..n)
            .map(|b| {
                let base = (b * 8192) as i64;
                RecordBatch::try_new(
                    schema(),
                    vec![Arc::new(Int64Array::from_iter_values(base..base + 8192))],
                )
                .unwrap()
            })
            .collect()
    }

    fn spec(memory: Arc<dyn MemoryPool>) -> MapOutputSpec {
        MapOutputSpec {
            kind: ExchangeKind::Hash,
            num_partitions: 64,
            hash_exprs: vec![Arc::new(Column::new("k", 0))],
            range: None,
            compression: ShuffleCompression::None,
            memory,
            name: "test".into(),
        }
    }

    fn stream(batches: Vec<RecordBatch>) -> SendableRecordBatchStream {
        Box::pin(RecordBatchStreamAdapter::new(
            schema(),
            futures::stream::iter(batches.into_iter().map(Ok)),
        ))
    }

    /// The blocks' buffers are accounted in the task's pool: in a small
    /// pool the writer writes out what it holds early and the rows are all
    /// there; in a pool too small for one batch it fails naming itself.
    #[tokio::test]
    async fn the_writers_buffers_live_in_the_tasks_pool() {
        let dir = tempfile::tempdir().unwrap();
        let unbounded: Arc<dyn MemoryPool> = Arc::new(UnboundedMemoryPool::default());
        let big = write_map_output(
            stream(batches(40)),
            &spec(unbounded),
            dir.path(),
            0,
            0,
            None,
        )
        .await
        .unwrap();
        // 40 batches of 8192 rows over 64 coalescers of 8192 rows: most
        // rows wait in memory until the end without a limit.
        let small: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 20));
        let out = write_map_output(
            stream(batches(40)),
            &spec(Arc::clone(&small)),
            dir.path(),
            1,
            0,
            None,
        )
        .await
        .unwrap();
        let rows = |o: &WrittenMapOutput| o.blocks.iter().map(|b| b.rows).sum::<u64>();
        assert_eq!(rows(&out), 40 * 8192);
        assert_eq!(rows(&big), 40 * 8192);
        for (a, b) in out.blocks.iter().zip(&big.blocks) {
            assert_eq!(a.rows, b.rows);
        }
        assert_eq!(small.reserved(), 0, "given back at the end");

        let tiny: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1024));
        let err = write_map_output(stream(batches(2)), &spec(tiny), dir.path(), 2, 0, None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("ShuffleWriter[test]"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.iter().all(|n| !n.ends_with(".tmp")), "{left:?}");
    }

    /// A map task cancelled while it writes (its future dropped) leaves no
    /// `.tmp` directory: it is removed at once, not at the end of the job.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_attempt_removes_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let stage_dir = dir.path().to_path_buf();
        // One batch, then an input that never ends.
        let input =
            futures::stream::iter(batches(1).into_iter().map(Ok)).chain(futures::stream::pending());
        let stream: SendableRecordBatchStream =
            Box::pin(RecordBatchStreamAdapter::new(schema(), input));
        let task = tokio::spawn(async move {
            let spec = spec(Arc::new(UnboundedMemoryPool::default()));
            write_map_output(stream, &spec, &stage_dir, 0, 3, None).await
        });
        let tmp = |dir: &Path| -> Vec<String> {
            std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while tmp(dir.path()).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the attempt did not start writing"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(tmp(dir.path())[0].starts_with("map-0.attempt-3-"));
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(tmp(dir.path()), Vec::<String>::new());
    }
}

/// The layout measurement of issue 11 (`cargo test --workspace --lib
/// measure_layout -- --ignored --nocapture`): map tasks writing 2 000
/// reduce partitions as one file per block (the layout before this one,
/// rebuilt here for the comparison) and as one data file plus an index:
/// their write time and the files they leave.
#[cfg(test)]
mod layout_measure {
    use std::path::PathBuf;
    use std::time::Instant;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

    use super::*;

    fn input(rows: usize, seed: i64) -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
            Field::new("s", DataType::Utf8, false),
        ]));
        let batches = (0..rows / 8192)
            .map(|b| {
                let base = seed * 1_000_000_007 + (b * 8192) as i64;
                let k =
                    Int64Array::from_iter_values((0..8192).map(|i| (base + i) * 7919 % 1_000_003));
                let v = Int64Array::from_iter_values((0..8192).map(|i| base + i));
                let s = StringArray::from_iter_values(
                    (0..8192).map(|i| format!("customer#{:012}", base + i)),
                );
                RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![Arc::new(k), Arc::new(v), Arc::new(s)],
                )
                .unwrap()
            })
            .collect();
        (schema, batches)
    }

    fn count_files(dir: &Path) -> (usize, u64) {
        let mut files = 0;
        let mut bytes = 0;
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                let (f, b) = count_files(&e.path());
                files += f;
                bytes += b;
            } else {
                files += 1;
                bytes += meta.len();
            }
        }
        (files, bytes)
    }

    /// The layout before: one Arrow IPC file per non-empty block, written
    /// through a 64 KiB buffer each.
    fn write_file_per_block(
        batches: Vec<RecordBatch>,
        spec: &MapOutputSpec,
        dir: &Path,
        map: usize,
    ) -> u64 {
        let schema = batches[0].schema();
        let n = spec.num_partitions;
        let mut buffers: Vec<BlockBuffer> = (0..n)
            .map(|_| BlockBuffer {
                coalescer: BatchCoalescer::new(Arc::clone(&schema), BLOCK_BATCH_ROWS),
                writer: None,
                rows: 0,
                segments: vec![],
            })
            .collect();
        let mut files: Vec<Option<StreamWriter<std::io::BufWriter<File>>>> =
            (0..n).map(|_| None).collect();
        let (mut hash_buf, mut ids) = (vec![], vec![]);
        let mut rows = 0;
        let mut drain = |buffers: &mut [BlockBuffer]| {
            for (r, b) in buffers.iter_mut().enumerate() {
                while let Some(batch) = b.coalescer.next_completed_batch() {
                    let w = files[r].get_or_insert_with(|| {
                        let f =
                            File::create(dir.join(format!("map-{map}-reduce-{r}.arrow"))).unwrap();
                        StreamWriter::try_new_with_options(
                            std::io::BufWriter::with_capacity(1 << 16, f),
                            &schema,
                            write_options(spec.compression).unwrap(),
                        )
                        .unwrap()
                    });
                    rows += batch.num_rows() as u64;
                    w.write(&batch).unwrap();
                }
            }
        };
        for batch in batches {
            let keys = vec![
                spec.hash_exprs[0]
                    .evaluate(&batch)
                    .unwrap()
                    .into_array(batch.num_rows())
                    .unwrap(),
            ];
            partition_ids(&keys, batch.num_rows(), n, &mut hash_buf, &mut ids).unwrap();
            push_partitioned(&batch, &ids, &mut buffers).unwrap();
            drain(&mut buffers);
        }
        for b in &mut buffers {
            b.coalescer.finish_buffered_batch().unwrap();
        }
        drain(&mut buffers);
        for w in files.iter_mut().flatten() {
            w.finish().unwrap();
            w.get_mut().flush().unwrap();
        }
        rows
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement, run by hand"]
    async fn measure_layout() {
        let (maps, rows) = (4usize, 401_408usize);
        for compression in [ShuffleCompression::None, ShuffleCompression::Lz4] {
            let spec = MapOutputSpec {
                kind: ExchangeKind::Hash,
                num_partitions: 2000,
                hash_exprs: vec![Arc::new(Column::new("k", 0))],
                range: None,
                compression,
                memory: Arc::new(
                    datafusion::execution::memory_pool::UnboundedMemoryPool::default(),
                ),
                name: "measure".into(),
            };
            for layout in ["file per block", "data + index"] {
                let base = tempfile_dir();
                let mut total = std::time::Duration::ZERO;
                for m in 0..maps {
                    let (schema, batches) = input(rows, m as i64);
                    let start = Instant::now();
                    let written = if layout == "data + index" {
                        let stream: SendableRecordBatchStream =
                            Box::pin(RecordBatchStreamAdapter::new(
                                schema,
                                futures::stream::iter(batches.into_iter().map(Ok)),
                            ));
                        let out = write_map_output(stream, &spec, &base, m, 0, None)
                            .await
                            .unwrap();
                        out.blocks.iter().map(|s| s.rows).sum::<u64>()
                    } else {
                        write_file_per_block(batches, &spec, &base, m)
                    };
                    total += start.elapsed();
                    assert_eq!(written, rows as u64);
                }
                let (files, bytes) = count_files(&base);
                println!(
                    "LAYOUT {layout:>14} compression={compression:?} maps={maps} rows/map={rows} \
                     partitions=2000: write {:.1} ms/map, {files} files, {bytes} bytes",
                    total.as_secs_f64() * 1000.0 / maps as f64
                );
                std::fs::remove_dir_all(&base).unwrap();
            }
        }
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "minispark-layout-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
