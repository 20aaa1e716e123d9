//! An executor's memory: one pool shared fairly by its running tasks, and
//! one place to spill (Spark's executor memory and local dirs).
//!
//! `minispark executor --memory 1g` (for an embedded cluster the
//! `minispark.executor.memory` setting) bounds what the operators of all
//! the executor's tasks may hold at once. The pool is DataFusion's
//! [`FairSpillPool`]: operators that can spill (sorts, aggregations,
//! sort-merge joins) each get an equal share of what the operators that
//! cannot spill leave, and write the rest to disk; an operator that cannot
//! spill takes memory first come, first served. [`TrackConsumersPool`]
//! around it names the largest consumers when an allocation fails. Spill
//! files go into `<work-dir>/spill`, which the executor empties when it
//! starts. Without `--memory` the pool is unbounded (and nothing spills).
//!
//! minispark's own buffers are consumers of the same pool: a map task's
//! blocks waiting to be written (`ShuffleWriter[...]`, [`crate::shuffle`]),
//! fetched blocks waiting to be read (`ShuffleReader[...]`,
//! [`crate::shuffle_block_fetcher`]) and broadcast build sides
//! (`BroadcastBuildSide[...]`, [`crate::broadcast_cache`], in the
//! executor's pool itself since they outlive a task).
//!
//! A job's `datafusion.runtime.memory_limit` caps each of its tasks inside
//! the executor's pool ([`TaskMemoryCap`]); its other runtime settings
//! shape the task's runtime (`minispark_planner::runtime_settings`).

use std::fmt;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::{DataFusionError, Result, resources_datafusion_err};
use datafusion::execution::disk_manager::{DiskManager, DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation, TrackConsumersPool,
    UnboundedMemoryPool,
};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;
use minispark_planner::runtime_settings::RuntimeSettings;

/// Spill files a sort merges at once under a bounded pool (DataFusion's
/// default, 0, merges all at once, and each file's stream holds a batch:
/// tens of files outgrow a small executor's memory). More files are merged
/// in several passes.
const BOUNDED_SPILL_MERGE_FAN_IN: usize = 4;

/// How many of the largest consumers an out-of-memory error names.
const NAMED_CONSUMERS: usize = 5;

/// The memory pool and spill files every task of one executor shares.
#[derive(Debug, Clone)]
pub struct ExecutorMemory {
    pool: Arc<dyn MemoryPool>,
    disk: Arc<DiskManager>,
    spill_dir: PathBuf,
    /// The pool's size, if bounded.
    limit: Option<usize>,
    /// Tasks that run at once (the executor's slots).
    slots: usize,
}

impl ExecutorMemory {
    /// A pool of `limit` bytes (unbounded when `None`) and a spill
    /// directory in `work_dir`, emptied of a previous process's files when
    /// `alone` (no live executor shares the work dir: see
    /// [`crate::work_dir::WorkDirLock`]; each process spills into a
    /// directory of its own inside it).
    pub fn new(limit: Option<u64>, slots: usize, work_dir: &Path, alone: bool) -> Result<Self> {
        // 0, as the setting spells "no limit", is unbounded.
        let limit = limit.filter(|l| *l > 0);
        if let Some(limit) = limit {
            minispark_proto::limits::check_memory(limit).map_err(DataFusionError::Configuration)?;
        }
        let limit = limit
            .map(|l| {
                usize::try_from(l).map_err(|_| {
                    DataFusionError::Configuration(format!("executor memory {l} is too large"))
                })
            })
            .transpose()?;
        let pool: Arc<dyn MemoryPool> = match limit {
            Some(size) => Arc::new(TrackConsumersPool::new(
                FairSpillPool::new(size),
                NonZeroUsize::new(NAMED_CONSUMERS).expect("non-zero"),
            )),
            None => Arc::new(UnboundedMemoryPool::default()),
        };
        let spill_dir = work_dir.join("spill");
        // Spill files of a previous process are garbage: a task's spill
        // files live only as long as the task.
        match if alone {
            std::fs::remove_dir_all(&spill_dir)
        } else {
            Ok(())
        } {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(DataFusionError::Configuration(format!(
                    "cannot empty the spill directory {}: {e}",
                    spill_dir.display()
                )));
            }
        }
        std::fs::create_dir_all(&spill_dir).map_err(|e| {
            DataFusionError::Configuration(format!(
                "cannot create the spill directory {}: {e}",
                spill_dir.display()
            ))
        })?;
        let disk = Arc::new(Self::disk_builder(&spill_dir, limit.is_some()).build()?);
        Ok(Self {
            pool,
            disk,
            spill_dir,
            limit,
            slots: slots.max(1),
        })
    }

    /// Spill files in `spill_dir`; merged a few at a time when `bounded`.
    fn disk_builder(spill_dir: &Path, bounded: bool) -> DiskManagerBuilder {
        let builder = DiskManagerBuilder::default()
            .with_mode(DiskManagerMode::Directories(vec![spill_dir.to_path_buf()]));
        if bounded {
            builder.with_max_spill_merge_fan_in(BOUNDED_SPILL_MERGE_FAN_IN)
        } else {
            builder
        }
    }

    /// The pool's size in bytes, if bounded.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Fits DataFusion's per-operator reservations in `config` to what a
    /// task may hold: a sort sets aside `sort_spill_reservation_bytes`
    /// (10 MiB by default) to merge its spill files, more than a task's
    /// share of a small executor. With a bounded pool (or a job's
    /// `memory_limit`), it is at most a quarter of the task's share.
    pub fn fit_reservations(&self, config: &mut SessionConfig, settings: &RuntimeSettings) {
        let share = self.limit.map(|l| l / self.slots);
        let share = match (share, settings.memory_limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(share) = share {
            let execution = &mut config.options_mut().execution;
            execution.sort_spill_reservation_bytes =
                execution.sort_spill_reservation_bytes.min(share / 4);
        }
    }

    /// The executor's pool itself (what outlives a task, such as a shared
    /// broadcast build side, is accounted here).
    pub fn pool(&self) -> Arc<dyn MemoryPool> {
        Arc::clone(&self.pool)
    }

    /// Bytes the executor's tasks hold in the pool now.
    pub fn reserved(&self) -> usize {
        self.pool.reserved()
    }

    /// The runtime a task with `settings` runs on: the executor's pool
    /// (capped by the job's memory limit, if it set one) and spill files
    /// (its own, in the executor's spill directory, if the job set limits
    /// on them), the job's cache settings.
    pub fn task_runtime(&self, settings: &RuntimeSettings) -> Result<RuntimeEnvBuilder> {
        let pool: Arc<dyn MemoryPool> = match settings.memory_limit {
            Some(cap) => Arc::new(TaskMemoryCap::new(Arc::clone(&self.pool), cap)),
            None => Arc::clone(&self.pool),
        };
        let mut builder = RuntimeEnvBuilder::new().with_memory_pool(pool);
        // A job that sets its own spill limits, or caps tasks on an
        // unbounded executor (whose spill files merge all at once), gets
        // spill files of its own.
        let own_disk = settings.has_disk_settings()
            || (settings.memory_limit.is_some() && self.limit.is_none());
        builder = if own_disk {
            builder.with_disk_manager_builder(Self::disk_builder(
                &self.spill_dir,
                self.limit.is_some() || settings.memory_limit.is_some(),
            ))
        } else {
            RuntimeEnvBuilder {
                disk_manager: Some(Arc::clone(&self.disk)),
                ..builder
            }
        };
        Ok(settings.apply_except_memory(builder))
    }

    /// `error` of a task, with what the executor's memory is and how to get
    /// more when it is that memory that ran out.
    pub fn explain(&self, error: DataFusionError) -> DataFusionError {
        let Some(limit) = self.limit else {
            return error;
        };
        if !matches!(error.find_root(), DataFusionError::ResourcesExhausted(_)) {
            return error;
        }
        DataFusionError::ResourcesExhausted(format!(
            "{error}. This executor's tasks share {} MiB (--memory, or \
             minispark.executor.memory for an embedded cluster); raise it, give the \
             executor fewer slots, or use more shuffle partitions \
             (minispark.shuffle.partitions) so each task holds less",
            limit >> 20
        ))
    }
}

/// A task's cap inside its executor's pool: `datafusion.runtime.memory_limit`
/// of the task's job. The executor's pool still decides first; the cap
/// then refuses what would take the task past it.
#[derive(Debug)]
pub struct TaskMemoryCap {
    inner: Arc<dyn MemoryPool>,
    cap: usize,
    used: AtomicUsize,
}

impl TaskMemoryCap {
    pub fn new(inner: Arc<dyn MemoryPool>, cap: usize) -> Self {
        Self {
            inner,
            cap,
            used: AtomicUsize::new(0),
        }
    }
}

impl fmt::Display for TaskMemoryCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task cap of {} bytes in {}", self.cap, self.inner)
    }
}

impl MemoryPool for TaskMemoryCap {
    fn name(&self) -> &str {
        "task_cap"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional);
        self.used.fetch_add(additional, Ordering::SeqCst);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink);
        self.used.fetch_sub(shrink, Ordering::SeqCst);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let used = self.used.load(Ordering::SeqCst);
        if used + additional > self.cap {
            return Err(resources_datafusion_err!(
                "Failed to allocate additional {additional} bytes for {} with {} bytes already \
                 allocated for this reservation: the task holds {used} bytes of its cap of {} \
                 bytes (datafusion.runtime.memory_limit)",
                reservation.consumer().name(),
                reservation.size(),
                self.cap
            ));
        }
        self.inner.try_grow(reservation, additional)?;
        self.used.fetch_add(additional, Ordering::SeqCst);
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_pool_spills_into_the_work_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("spill/stale")).unwrap();
        let memory = ExecutorMemory::new(Some(64 << 20), 2, dir.path(), true).unwrap();
        assert_eq!(memory.limit(), Some(64 << 20));
        assert!(
            !dir.path().join("spill/stale").exists(),
            "old spill files removed"
        );
        let runtime = memory
            .task_runtime(&RuntimeSettings::default())
            .unwrap()
            .build()
            .unwrap();
        let file = runtime.disk_manager.create_tmp_file("a test").unwrap();
        assert!(
            file.path().unwrap().starts_with(dir.path().join("spill")),
            "{:?}",
            file.path()
        );
        // Tasks share the pool.
        let a = MemoryConsumer::new("a").register(&runtime.memory_pool);
        a.try_grow(40 << 20).unwrap();
        assert_eq!(memory.reserved(), 40 << 20);
    }

    #[test]
    fn sort_reservations_fit_a_tasks_share() {
        let dir = tempfile::tempdir().unwrap();
        let memory = ExecutorMemory::new(Some(32 << 20), 2, dir.path(), true).unwrap();
        let mut config = SessionConfig::new();
        memory.fit_reservations(&mut config, &RuntimeSettings::default());
        assert_eq!(
            config.options().execution.sort_spill_reservation_bytes,
            4 << 20
        );
        let settings = RuntimeSettings {
            memory_limit: Some(8 << 20),
            ..Default::default()
        };
        let mut config = SessionConfig::new();
        memory.fit_reservations(&mut config, &settings);
        assert_eq!(
            config.options().execution.sort_spill_reservation_bytes,
            2 << 20
        );
        let unbounded = ExecutorMemory::new(None, 2, dir.path(), true).unwrap();
        let mut config = SessionConfig::new();
        unbounded.fit_reservations(&mut config, &RuntimeSettings::default());
        assert_eq!(
            config.options().execution.sort_spill_reservation_bytes,
            10 << 20
        );
    }

    #[test]
    fn tiny_memory_is_refused_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let err = ExecutorMemory::new(Some(1024), 2, dir.path(), true).unwrap_err();
        assert!(err.to_string().contains("take a unit"), "{err}");
    }

    #[test]
    fn a_jobs_memory_limit_caps_each_task_inside_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let memory = ExecutorMemory::new(Some(64 << 20), 2, dir.path(), true).unwrap();
        let settings = RuntimeSettings {
            memory_limit: Some(10 << 20),
            ..Default::default()
        };
        let runtime = memory.task_runtime(&settings).unwrap().build().unwrap();
        let r = MemoryConsumer::new("sorter").register(&runtime.memory_pool);
        r.try_grow(8 << 20).unwrap();
        let err = r.try_grow(4 << 20).unwrap_err().to_string();
        assert!(err.contains("datafusion.runtime.memory_limit"), "{err}");
        assert_eq!(memory.reserved(), 8 << 20);
        drop(r);
        assert_eq!(memory.reserved(), 0);
    }

    #[test]
    fn running_out_names_the_setting_to_raise() {
        let dir = tempfile::tempdir().unwrap();
        let memory = ExecutorMemory::new(Some(16 << 20), 2, dir.path(), true).unwrap();
        let runtime = memory
            .task_runtime(&RuntimeSettings::default())
            .unwrap()
            .build()
            .unwrap();
        let r = MemoryConsumer::new("HashJoinInput").register(&runtime.memory_pool);
        let err = memory
            .explain(r.try_grow(32 << 20).unwrap_err())
            .to_string();
        assert!(err.contains("HashJoinInput"), "{err}");
        assert!(err.contains("16 MiB"), "{err}");
        assert!(err.contains("minispark.executor.memory"), "{err}");
    }
}
