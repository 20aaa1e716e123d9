//! The build side of a broadcast join, read once per executor and shared
//! by its tasks (Spark keeps a broadcast variable once per executor in its
//! `BlockManager`, whatever the number of tasks that use it).
//!
//! Every task of a stage that joins with a broadcast reads the whole output
//! of the broadcast stage. Without this cache each of them fetched and
//! decoded every block of it; now the first task of the stage on an
//! executor fetches them, the tasks that start meanwhile wait for it, and
//! all of them read the same batches:
//!
//! ```text
//!   task 0 ─┐                          ┌─ fetch + decode (once) ─▶ batches
//!   task 1 ─┼─▶ cache[(job, stage)] ───┤
//!   task 7 ─┘                          └─ the others wait, then share them
//! ```
//!
//! An entry is keyed by the job and the broadcast stage, and remembers which
//! map outputs (executor, map partition, committed attempt) it was read
//! from: when the stage's outputs are recomputed (a lost executor), the
//! readers' block lists change and the entry is read again. A failed read
//! is not kept: the next task tries again. The batches are accounted in the
//! executor's memory pool as `BroadcastBuildSide[job=…, stage=…]`, so a build
//! side larger than the executor's memory fails with an error naming it;
//! they are freed when the job's data is removed (or cancelled), once the
//! last task reading them is done.
//!
//! What a task did is counted: `broadcast_fetches` in the task's report and
//! the job's counters (one per executor per broadcast stage, not one per
//! task).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use futures::StreamExt;
use minispark_planner::exchange::BlockLocation;
use tokio::sync::OnceCell;

/// Which map output a block comes from: a recomputed output is another one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BlockKey {
    executor_id: String,
    map_partition: usize,
    reduce_partition: usize,
    map_attempt: u32,
}

impl BlockKey {
    fn of(blocks: &[BlockLocation]) -> Vec<BlockKey> {
        blocks
            .iter()
            .map(|b| BlockKey {
                executor_id: b.executor_id.clone(),
                map_partition: b.map_partition,
                reduce_partition: b.reduce_partition,
                map_attempt: b.map_attempt,
            })
            .collect()
    }
}

/// A broadcast stage's output as read by this executor.
#[derive(Debug)]
pub struct BroadcastBuildSide {
    pub batches: Vec<RecordBatch>,
    /// Its bytes in the executor's memory pool.
    reservation: MemoryReservation,
}

impl BroadcastBuildSide {
    /// Bytes the batches hold.
    pub fn bytes(&self) -> usize {
        self.reservation.size()
    }
}

#[derive(Debug)]
struct Entry {
    blocks: Vec<BlockKey>,
    cell: Arc<OnceCell<Arc<BroadcastBuildSide>>>,
}

/// The broadcast build sides an executor holds, by job and stage.
#[derive(Debug)]
pub struct BroadcastCache {
    /// The executor's pool (not a task's: the batches outlive the task that
    /// read them).
    pool: Arc<dyn MemoryPool>,
    entries: Mutex<HashMap<(String, usize), Entry>>,
}

impl BroadcastCache {
    pub fn new(pool: Arc<dyn MemoryPool>) -> Self {
        Self {
            pool,
            entries: Mutex::default(),
        }
    }

    /// The build side made of `blocks` (all of one broadcast stage's
    /// output, non-empty), and whether this call read it (`true`) or found
    /// it read by another task (`false`). `read` streams the blocks; it is
    /// called by one task at a time, until one succeeds.
    pub async fn get_or_read<F, Fut>(
        &self,
        blocks: &[BlockLocation],
        read: F,
    ) -> Result<(Arc<BroadcastBuildSide>, bool)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<SendableRecordBatchStream>>,
    {
        let Some(first) = blocks.first() else {
            return Err(DataFusionError::Internal(
                "a broadcast build side of no blocks has no job and stage".into(),
            ));
        };
        let (job_id, stage_id) = (first.job_id.clone(), first.stage_id);
        let keys = BlockKey::of(blocks);
        let cell = {
            let mut entries = self.entries.lock().expect("broadcast cache lock");
            let entry = entries
                .entry((job_id.clone(), stage_id))
                .or_insert_with(|| Entry {
                    blocks: keys.clone(),
                    cell: Arc::default(),
                });
            if entry.blocks != keys {
                // The stage's outputs were recomputed: the old copy goes
                // once the tasks reading it are done.
                *entry = Entry {
                    blocks: keys,
                    cell: Arc::default(),
                };
            }
            Arc::clone(&entry.cell)
        };
        let mut read_here = false;
        let build = cell
            .get_or_try_init(|| async {
                read_here = true;
                let reservation = MemoryConsumer::new(format!(
                    "BroadcastBuildSide[job={job_id}, stage={stage_id}]"
                ))
                .register(&self.pool);
                let mut stream = read().await?;
                let mut batches = vec![];
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    reservation.try_grow(batch.get_array_memory_size())?;
                    batches.push(batch);
                }
                Ok::<_, DataFusionError>(Arc::new(BroadcastBuildSide {
                    batches,
                    reservation,
                }))
            })
            .await?;
        Ok((Arc::clone(build), read_here))
    }

    /// Forgets the build sides of `job_id` (the job is over); returns how
    /// many there were.
    pub fn remove_job(&self, job_id: &str) -> usize {
        let mut entries = self.entries.lock().expect("broadcast cache lock");
        let before = entries.len();
        entries.retain(|(job, _), _| job != job_id);
        before - entries.len()
    }

    /// Build sides held now.
    pub fn len(&self) -> usize {
        self.entries.lock().expect("broadcast cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::execution::memory_pool::{GreedyMemoryPool, UnboundedMemoryPool};
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

    use super::*;

    fn block(map_partition: usize, map_attempt: u32) -> BlockLocation {
        BlockLocation {
            executor_id: "e1".into(),
            address: "127.0.0.1:1".into(),
            job_id: "job-1".into(),
            stage_id: 3,
            map_partition,
            reduce_partition: 0,
            map_attempt,
            bytes: 100,
            rows: 10,
        }
    }

    fn stream(rows: i64) -> SendableRecordBatchStream {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from_iter_values(0..rows))],
        )
        .unwrap();
        Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter([Ok(batch)]),
        ))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_tasks_read_a_build_side_once() {
        let cache = Arc::new(BroadcastCache::new(
            Arc::new(UnboundedMemoryPool::default()),
        ));
        let reads = Arc::new(AtomicUsize::new(0));
        let blocks = vec![block(0, 0), block(1, 0)];
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (cache, reads, blocks) =
                    (Arc::clone(&cache), Arc::clone(&reads), blocks.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_read(&blocks, || async {
                            reads.fetch_add(1, Ordering::SeqCst);
                            // Slow enough that the other tasks wait for it.
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            Ok(stream(1000))
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut read_here = 0;
        for t in tasks {
            let (build, fetched) = t.await.unwrap();
            assert_eq!(build.batches[0].num_rows(), 1000);
            read_here += fetched as usize;
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert_eq!(read_here, 1);

        // Recomputed map outputs are read again; the job's end forgets them.
        let (_, fetched) = cache
            .get_or_read(&[block(0, 0), block(1, 1)], || async { Ok(stream(5)) })
            .await
            .unwrap();
        assert!(fetched);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.remove_job("job-2"), 0);
        assert_eq!(cache.remove_job("job-1"), 1);
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn a_failed_read_is_tried_again_and_memory_is_accounted() {
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 20));
        let cache = BroadcastCache::new(Arc::clone(&pool));
        let blocks = vec![block(0, 0)];
        let err = cache
            .get_or_read(&blocks, || async {
                Err(datafusion::common::DataFusionError::Execution(
                    "fetch failed".into(),
                ))
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("fetch failed"), "{err}");
        let (build, fetched) = cache
            .get_or_read(&blocks, || async { Ok(stream(1000)) })
            .await
            .unwrap();
        assert!(fetched);
        assert!(build.bytes() >= 8000, "{}", build.bytes());
        assert_eq!(pool.reserved(), build.bytes());
        cache.remove_job("job-1");
        drop(build);
        assert_eq!(pool.reserved(), 0);

        // A build side larger than the pool fails, naming itself.
        let err = cache
            .get_or_read(&blocks, || async { Ok(stream(1 << 18)) })
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("BroadcastBuildSide[job=job-1, stage=3]"),
            "{err}"
        );
        assert_eq!(pool.reserved(), 0);
    }
}
