//! The executor's gRPC service: runs tasks, serves shuffle blocks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::common::{DataFusionError, Result, internal_err};
use futures::{Stream, StreamExt};
use minispark_planner::codec::decode_plan;
use minispark_planner::config::minispark_config;
use minispark_planner::exchange::{FetchFailed, ShuffleRuntimeExt, ShuffleWriterExec};
use minispark_planner::runtime_settings::RuntimeSettings;
use minispark_planner::session::session_config;
use minispark_proto::executor_server::Executor;
use minispark_proto::{
    CancelJobResponse, DataChunk, JobRef, MapOutput, PartitionStats, RemoveJobDataResponse,
    ShuffleBlock, TaskDefinition, TaskFailure, TaskStatus, task_status,
};
use tokio::task::AbortHandle;
use tonic::{Request, Response, Status};
use tracing::{Instrument, info, info_span, warn};

use crate::memory::ExecutorMemory;
use crate::shuffle::{ExecutorShuffleRuntime, MapOutputSpec, write_map_output};
use crate::shuffle_block_fetcher::TaskShuffleRuntime;
use crate::shuffle_faults::faults;
use crate::shuffle_index::{DATA_FILE, ShuffleIndex, segment_chunks};
use crate::work_dir::WorkDir;

/// State shared by every request the executor serves.
#[derive(Debug)]
pub struct ExecutorService {
    pub executor_id: String,
    pub work_dir: PathBuf,
    /// Where ids from the wire become paths, checked.
    dirs: Arc<WorkDir>,
    runtime: Arc<ExecutorShuffleRuntime>,
    /// The memory pool and spill files its tasks share.
    memory: Arc<ExecutorMemory>,
    /// Running tasks by job, so a job can be cancelled as a whole.
    running: Arc<Mutex<HashMap<String, Vec<AbortHandle>>>>,
    /// Number of running tasks (reported in heartbeats).
    pub active_tasks: Arc<AtomicUsize>,
    /// What `/metrics` serves (`crate::executor_metrics`).
    pub metrics: Arc<crate::executor_metrics::ExecutorMetrics>,
    /// Where tasks run: a runtime of their own, so CPU-bound operators
    /// never delay heartbeats or block serving shuffle blocks.
    tasks: tokio::runtime::Handle,
}

impl ExecutorService {
    pub fn new(
        executor_id: String,
        work_dir: PathBuf,
        tasks: tokio::runtime::Handle,
        security: minispark_proto::Security,
        memory: ExecutorMemory,
    ) -> Self {
        let runtime = Arc::new(ExecutorShuffleRuntime::new(
            executor_id.clone(),
            work_dir.clone(),
            security,
            memory.pool(),
        ));
        Self {
            executor_id,
            dirs: Arc::new(WorkDir::new(work_dir.clone())),
            work_dir,
            runtime,
            memory: Arc::new(memory),
            running: Arc::default(),
            active_tasks: Arc::default(),
            metrics: Arc::default(),
            tasks,
        }
    }

    /// Runs one task: decode the stage plan, execute the task's partition,
    /// write its blocks and commit them. `commit_delay`: a test-only wait
    /// before the commit (see [`crate::shuffle_faults`]).
    async fn run_task(
        executor_id: String,
        work_dir: Arc<WorkDir>,
        runtime: Arc<ExecutorShuffleRuntime>,
        memory: Arc<ExecutorMemory>,
        task: TaskDefinition,
        commit_delay: Option<Duration>,
    ) -> Result<MapOutput> {
        // An overflow reads in ANSI mode's terms, naming its setting.
        let ansi = session_config(&task.settings)
            .map(|c| minispark_planner::ansi_arithmetic::ansi_enabled(c.options()))
            .unwrap_or(true);
        let (job_id, stage) = (task.job_id.clone(), task.stage_id);
        let shared = Arc::clone(&runtime);
        Self::run_task_in(executor_id, work_dir, runtime, &memory, task, commit_delay)
            .await
            // A retry builds its broadcast hash tables again rather than
            // meet a failed build.
            .inspect_err(|_| shared.hash_tables.forget_stage(&job_id, stage))
            .map_err(|e| minispark_planner::ansi_arithmetic::explain_overflow(e, ansi))
            .map_err(|e| memory.explain(e))
    }

    async fn run_task_in(
        executor_id: String,
        work_dir: Arc<WorkDir>,
        runtime: Arc<ExecutorShuffleRuntime>,
        memory: &ExecutorMemory,
        task: TaskDefinition,
        commit_delay: Option<Duration>,
    ) -> Result<MapOutput> {
        let start = Instant::now();
        // The executor's memory pool and spill files, with the job's
        // `datafusion.runtime.*` settings.
        let runtime_settings = RuntimeSettings::from_settings(&task.settings)?;
        let task_runtime = memory.task_runtime(&runtime_settings)?;
        let pool = task_runtime
            .memory_pool
            .clone()
            .ok_or_else(|| DataFusionError::Internal("a task runtime without a pool".into()))?;
        let hash_tables = Arc::clone(&runtime);
        let task_shuffle = Arc::new(TaskShuffleRuntime::new(runtime, Arc::clone(&pool)));
        let mut config = session_config(&task.settings)?
            .with_extension(Arc::new(ShuffleRuntimeExt(Arc::clone(&task_shuffle) as _)));
        memory.fit_reservations(&mut config, &runtime_settings);
        // What `spark_partition_id()` returns in this task.
        config.options_mut().extensions.insert(
            minispark_functions::spark_partition_id::TaskPartition::new(task.partition as usize),
        );
        let task_name = format!(
            "{}/stage-{}/partition-{}/attempt-{}",
            task.job_id, task.stage_id, task.partition, task.attempt
        );
        let ctx = Arc::new(minispark_storage::task_context_on(
            task_name,
            config,
            task_runtime,
        )?);
        let plan = decode_plan(&task.plan, &ctx).map_err(|e| {
            DataFusionError::Plan(format!(
                "cannot decode the stage plan: {}",
                minispark_proto::limits::explain_decode_error(&e.to_string())
            ))
        })?;
        // Broadcast joins probe the hash table of this executor's first
        // task of the stage.
        let (plan, broadcast_hash_tables_built) =
            hash_tables
                .hash_tables
                .share(&task.job_id, task.stage_id, &task.plan, plan)?;
        let decoded = start.elapsed();
        let Some(writer) = plan.downcast_ref::<ShuffleWriterExec>() else {
            return internal_err!(
                "a stage plan's root must be a ShuffleWriterExec, got {}",
                plan.name()
            );
        };
        let partition = task.partition as usize;
        // Test-only: a task made a straggler (see `straggler_faults`).
        if let Some(delay) =
            crate::straggler_faults::straggler_delay(task.stage_id, task.partition, task.attempt)
        {
            warn!(
                delay_ms = delay.as_millis() as u64,
                "test-only straggler: this attempt sleeps before it runs"
            );
            tokio::time::sleep(delay).await;
        }
        let spec = MapOutputSpec {
            kind: writer.kind(),
            num_partitions: writer.num_partitions(),
            hash_exprs: writer.hash_exprs().to_vec(),
            range: writer.range().cloned(),
            compression: minispark_config(ctx.session_config().options()).shuffle_compression,
            memory: pool,
            name: format!(
                "job={}, stage={}, map={partition}",
                task.job_id, task.stage_id
            ),
        };
        let stream = writer.input().execute(partition, Arc::clone(&ctx))?;
        let dir = work_dir.create_stage_dir(&task.job_id, task.stage_id as u64)?;
        let written =
            write_map_output(stream, &spec, &dir, partition, task.attempt, commit_delay).await?;
        if written.committed_ours {
            info!(
                stage = task.stage_id,
                map_partition = partition,
                attempt = task.attempt,
                "map output committed"
            );
        } else {
            warn!(
                stage = task.stage_id,
                map_partition = partition,
                attempt = task.attempt,
                committed_attempt = written.attempt,
                "map output already committed by another attempt; this attempt's files removed"
            );
        }
        let (blocks, hot_keys) = (written.blocks, written.hot_keys);
        let input_rows = scanned_rows(writer.input());
        let (spilled_bytes, spill_count) = spilled(writer.input());
        let elapsed = start.elapsed();
        info!(
            executor_id,
            job_id = task.job_id,
            stage_id = task.stage_id,
            partition,
            elapsed_ms = elapsed.as_millis() as u64,
            setup_us = decoded.as_micros() as u64,
            "task finished"
        );
        Ok(MapOutput {
            partitions: blocks
                .into_iter()
                .map(|b| PartitionStats {
                    partition: b.reduce_partition as u32,
                    rows: b.rows,
                    bytes: b.bytes,
                })
                .collect(),
            elapsed_us: elapsed.as_micros() as u64,
            input_rows,
            attempt: written.attempt,
            spilled_bytes,
            spill_count,
            broadcast_fetches: task_shuffle.broadcast_fetches(),
            remote_bytes_read_to_disk: task_shuffle.remote_bytes_read_to_disk(),
            broadcast_hash_tables_built,
            hot_keys: hot_keys
                .into_iter()
                .map(|k| minispark_proto::HotKey {
                    hash: k.hash,
                    display: k.display,
                    estimated_rows: k.estimated_rows,
                    partition: k.partition as u32,
                })
                .collect(),
        })
    }
}

/// Rows produced by the scans (leaves other than shuffle readers) of a plan
/// that has run: the task's input read from storage or generated.
fn scanned_rows(plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> u64 {
    if plan.children().is_empty() {
        if plan.is::<minispark_planner::exchange::ShuffleReaderExec>() {
            return 0;
        }
        return plan.metrics().and_then(|m| m.output_rows()).unwrap_or(0) as u64;
    }
    plan.children().into_iter().map(scanned_rows).sum()
}

/// Bytes and spill files the operators of a plan that has run wrote to
/// disk for lack of memory.
fn spilled(plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> (u64, u64) {
    let own = plan.metrics().map_or((0, 0), |m| {
        (
            m.spilled_bytes().unwrap_or(0) as u64,
            m.spill_count().unwrap_or(0) as u64,
        )
    });
    plan.children()
        .into_iter()
        .map(spilled)
        .fold(own, |(b, c), (b2, c2)| (b + b2, c + c2))
}

/// The task's error for the driver. A [`FetchFailed`] anywhere in the
/// error's chain of causes (found by type, never by message text) is
/// reported as such, with the executor and block it could not read.
fn failure(err: &DataFusionError) -> TaskFailure {
    let fetch = FetchFailed::find(err);
    TaskFailure {
        message: minispark_planner::user_errors::user_message(err),
        deterministic: fetch.is_none() && minispark_planner::user_errors::is_deterministic(err),
        fetch_failed: fetch.is_some(),
        failed_executor_id: fetch.map(|f| f.executor_id.clone()).unwrap_or_default(),
        failed_block: fetch.map(|f| crate::shuffle_block_fetcher::block_proto(&f.block)),
        block_missing: fetch.is_some_and(|f| f.missing),
        hash_join_out_of_memory: hash_join_out_of_memory(err),
    }
}

/// Whether `err` is the memory running out while hash tables held it: a
/// `ResourcesExhausted` anywhere in its chain of causes that names
/// DataFusion's `HashJoinInput` consumer, as the failing allocation or
/// among the largest consumers (the pool names them; DataFusion gives them
/// no other form). A hash table cannot spill, so the allocation that fails
/// may be another operator's.
fn hash_join_out_of_memory(err: &DataFusionError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(DataFusionError::ResourcesExhausted(message)) = e.downcast_ref()
            && message.contains("HashJoinInput[")
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Counts a task's end in the executor's metrics: its output written and
/// spilled, or its failure (a fetch failure too).
fn count_task_end(
    metrics: &crate::executor_metrics::ExecutorMetrics,
    status: &task_status::Status,
) {
    match status {
        task_status::Status::Completed(output) => {
            metrics.tasks_succeeded.inc();
            metrics
                .task_duration
                .observe(output.elapsed_us as f64 / 1_000_000.0);
            metrics
                .shuffle_written
                .inc_by(output.partitions.iter().map(|p| p.bytes).sum());
            metrics.spilled.inc_by(output.spilled_bytes);
        }
        task_status::Status::Failed(failure) => {
            metrics.tasks_failed.inc();
            if failure.fetch_failed {
                metrics.fetch_failures.inc();
            }
        }
    }
}

/// Decrements the running-task count when a task ends, however it ends.
struct ActiveGuard(Arc<AtomicUsize>);
impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tonic::async_trait]
impl Executor for ExecutorService {
    async fn launch_task(
        &self,
        request: Request<TaskDefinition>,
    ) -> Result<Response<TaskStatus>, Status> {
        let task = request.into_inner();
        // Ids become paths: checked before anything else happens.
        crate::task_definition::check_task(&task).map_err(Status::invalid_argument)?;
        let job_id = task.job_id.clone();
        // Every log line of the task, here and in the operators it runs,
        // carries the ids the driver gave it (the driver's task span has
        // the same partition and attempt).
        let span = info_span!(
            "task",
            job_id = %task.job_id,
            stage = task.stage_id,
            partition = task.partition,
            attempt = task.attempt,
            executor_id = %self.executor_id,
        );
        if let Some(delay) = faults().orphan_commit_delay(&task) {
            return Ok(self.orphan(task, delay, span));
        }
        self.active_tasks.fetch_add(1, Ordering::SeqCst);
        let guard = ActiveGuard(Arc::clone(&self.active_tasks));
        let metrics = &self.metrics;
        metrics.tasks_started.inc();
        metrics.tasks_running.inc();
        let handle = self.tasks.spawn(
            Self::run_task(
                self.executor_id.clone(),
                Arc::clone(&self.dirs),
                Arc::clone(&self.runtime),
                Arc::clone(&self.memory),
                task,
                None,
            )
            .instrument(span.clone()),
        );
        self.running
            .lock()
            .expect("running lock")
            .entry(job_id.clone())
            .or_default()
            .push(handle.abort_handle());
        // If the driver drops this call (job cancelled), the task is aborted.
        let abort = handle.abort_handle();
        let _abort_on_drop = scopeguard(move || abort.abort());
        let result = handle.await;
        drop(guard);
        metrics.tasks_running.dec();
        // Forget finished tasks, so ids of jobs that are over do not pile up.
        {
            let mut running = self.running.lock().expect("running lock");
            if let Some(handles) = running.get_mut(&job_id) {
                handles.retain(|h| !h.is_finished());
                if handles.is_empty() {
                    running.remove(&job_id);
                }
            }
        }
        let status = match result {
            Ok(Ok(output)) => task_status::Status::Completed(output),
            Ok(Err(err)) => {
                span.in_scope(|| warn!(error = %err, "task failed"));
                task_status::Status::Failed(failure(&err))
            }
            Err(join_err) if join_err.is_cancelled() => task_status::Status::Failed(TaskFailure {
                message: "task cancelled".into(),
                ..Default::default()
            }),
            Err(join_err) => task_status::Status::Failed(TaskFailure {
                message: format!("task panicked: {join_err}"),
                ..Default::default()
            }),
        };
        count_task_end(metrics, &status);
        Ok(Response::new(TaskStatus {
            status: Some(status),
        }))
    }

    async fn cancel_job(
        &self,
        request: Request<JobRef>,
    ) -> Result<Response<CancelJobResponse>, Status> {
        let job_id = request.into_inner().job_id;
        minispark_proto::limits::check_job_id(&job_id).map_err(Status::invalid_argument)?;
        let handles = self
            .running
            .lock()
            .expect("running lock")
            .remove(&job_id)
            .unwrap_or_default();
        // Its broadcast build sides are freed once no task reads them.
        self.runtime.broadcasts.remove_job(&job_id);
        self.runtime.hash_tables.remove_job(&job_id);
        let mut cancelled = 0;
        for h in handles {
            if !h.is_finished() {
                h.abort();
                cancelled += 1;
            }
        }
        Ok(Response::new(CancelJobResponse { cancelled }))
    }

    async fn remove_job_data(
        &self,
        request: Request<JobRef>,
    ) -> Result<Response<RemoveJobDataResponse>, Status> {
        let job_id = request.into_inner().job_id;
        minispark_proto::limits::check_job_id(&job_id).map_err(Status::invalid_argument)?;
        self.running.lock().expect("running lock").remove(&job_id);
        self.runtime.broadcasts.remove_job(&job_id);
        self.runtime.hash_tables.remove_job(&job_id);
        // Only the directory of this job, and only when this executor made it.
        let bytes_removed = self
            .dirs
            .remove_job(&job_id)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(RemoveJobDataResponse { bytes_removed }))
    }

    type FetchPartitionStream =
        std::pin::Pin<Box<dyn Stream<Item = Result<DataChunk, Status>> + Send + 'static>>;

    async fn fetch_partition(
        &self,
        request: Request<ShuffleBlock>,
    ) -> Result<Response<Self::FetchPartitionStream>, Status> {
        let block = request.into_inner();
        let dir = self
            .dirs
            .map_output_dir(&block)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        if faults().take_fetch_unavailable() {
            warn!(
                job_id = block.job_id,
                stage = block.stage_id,
                map = block.map_partition,
                reduce = block.reduce_partition,
                "injected fault: FetchPartition answers Unavailable"
            );
            return Err(Status::unavailable(
                "injected fault: FetchPartition answers Unavailable (test only)",
            ));
        }
        if faults().take_fetch_hang() {
            warn!(
                job_id = block.job_id,
                stage = block.stage_id,
                map = block.map_partition,
                reduce = block.reduce_partition,
                "injected fault: FetchPartition never answers"
            );
            std::future::pending::<()>().await;
        }
        if let Some(delay) = faults().fetch_delay(block.stage_id) {
            tokio::time::sleep(delay).await;
        }
        if faults().take_fetch_not_found(block.stage_id) {
            warn!(
                job_id = block.job_id,
                stage = block.stage_id,
                map = block.map_partition,
                reduce = block.reduce_partition,
                "injected fault: FetchPartition answers NotFound"
            );
            return Err(Status::not_found(
                "injected fault: FetchPartition answers NotFound (test only)",
            ));
        }
        // Only a committed output is read, and only the attempt the reader
        // was promised: anything else is not found (the driver then
        // computes that map output again).
        let index = ShuffleIndex::read(&dir)
            .await
            .map_err(|e| Status::not_found(format!("shuffle output {}: {e}", dir.display())))?;
        if index.attempt != block.map_attempt {
            return Err(Status::not_found(format!(
                "shuffle output {} is attempt {}'s, not attempt {}'s",
                dir.display(),
                index.attempt,
                block.map_attempt
            )));
        }
        let Some(indexed) = index.blocks.get(block.reduce_partition as usize) else {
            return Err(Status::not_found(format!(
                "shuffle output {} has no reduce partition {}",
                dir.display(),
                block.reduce_partition
            )));
        };
        let data = dir.join(DATA_FILE);
        if let Err(e) = tokio::fs::metadata(&data).await {
            return Err(Status::not_found(format!(
                "shuffle data {}: {e}",
                data.display()
            )));
        }
        let metrics = Arc::clone(&self.metrics);
        let stream = segment_chunks(
            data,
            indexed.segments.clone(),
            minispark_proto::DATA_CHUNK_SIZE,
        )
        .map(move |chunk| match chunk {
            Ok(data) => {
                metrics.shuffle_served.inc_by(data.len() as u64);
                Ok(DataChunk { data })
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(Status::not_found(format!("shuffle data truncated: {e}")))
            }
            Err(e) => Err(Status::internal(format!("reading shuffle data: {e}"))),
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

impl ExecutorService {
    /// The test-only orphaned attempt (see [`crate::shuffle_faults`]): the
    /// task runs on, detached from the call, and the call is answered as
    /// failed at once.
    fn orphan(
        &self,
        task: TaskDefinition,
        delay: Duration,
        span: tracing::Span,
    ) -> Response<TaskStatus> {
        span.in_scope(|| {
            warn!(
                delay_ms = delay.as_millis() as u64,
                "injected fault: this attempt runs on while its call is answered as failed"
            )
        });
        let run = Self::run_task(
            self.executor_id.clone(),
            Arc::clone(&self.dirs),
            Arc::clone(&self.runtime),
            Arc::clone(&self.memory),
            task,
            Some(delay),
        );
        let task_span = span.clone();
        self.tasks.spawn(
            async move {
                if let Err(e) = run.await {
                    warn!(error = %e, "orphaned attempt failed");
                }
            }
            .instrument(task_span),
        );
        Response::new(TaskStatus {
            status: Some(task_status::Status::Failed(TaskFailure {
                message: "injected fault: the call of this attempt was abandoned (test only)"
                    .into(),
                ..Default::default()
            })),
        })
    }
}

/// Runs `f` when dropped.
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_held_by_hash_tables_is_told_from_other_memory_errors() {
        let join = DataFusionError::ResourcesExhausted(
            "Failed to allocate: Additional allocation failed for HashJoinInput[1] with top \
             memory consumers"
                .into(),
        );
        let wrapped = DataFusionError::Context("stage 3".into(), Box::new(join));
        assert!(hash_join_out_of_memory(&wrapped));
        assert!(failure(&wrapped).hash_join_out_of_memory);
        let beside = DataFusionError::ResourcesExhausted(
            "Additional allocation failed for ExternalSorterMerge[0] with top memory \
             consumers (across reservations) as: HashJoinInput[1]#28 consumed 97.7 MB"
                .into(),
        );
        assert!(hash_join_out_of_memory(&beside));
        let sort = DataFusionError::ResourcesExhausted(
            "Additional allocation failed for ExternalSorter[0] with top memory consumers \
             (across reservations) as: ExternalSorterMerge[0]#3 consumed 4.0 MB"
                .into(),
        );
        assert!(!hash_join_out_of_memory(&sort));
        let text = DataFusionError::Execution("for HashJoinInput".into());
        assert!(!hash_join_out_of_memory(&text));
    }
}
