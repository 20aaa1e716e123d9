//! Running one job: stages in dependency order, tasks on free slots,
//! retries, lost executors.
//!
//! ```text
//!   stage 0 ──┐
//!             ├──▶ stage 2 ──▶ stage 3 (result)
//!   stage 1 ──┘
//! ```
//!
//! A stage becomes runnable when every stage it reads has all its map
//! outputs. Independent stages (0 and 1 above) run at the same time. Before
//! a stage's first task is launched its shuffle readers are bound to the
//! blocks of its input stages and the plan is serialized once; every task of
//! the stage gets the same bytes and its own partition number.
//!
//! The scheduler loop of [`run_job`], one turn per event:
//!
//! ```text
//!   loop {
//!       handle_lost_executors   forget running tasks and map outputs of executors
//!                               that are gone; unbind the stages reading them
//!       final stage complete?   then the job is done
//!       check_executors_left    no executor alive and no call under way: fail
//!       launch_ready_tasks      bind each stage whose inputs are complete, launch
//!                               its missing tasks on free slots
//!       handle_one_event        a task call returned (record its output or apply
//!                               the failure rules), the cluster changed, or 250 ms
//!   }
//! ```
//!
//! Where each finished map task's output is, is kept by the job's
//! [`MapOutputTracker`]; what the job went through is counted in its
//! [`JobCounters`].
//!
//! Failures:
//! * a task that fails is retried, on another executor when there is one,
//!   until `minispark.task.maxFailures` attempts have failed;
//! * a task that could not fetch a block (the executor reports a typed
//!   `FetchFailed`, see `minispark_planner::exchange::FetchFailed`) means
//!   the executor holding it is gone: it is declared lost, its outputs are
//!   recomputed, then the task runs again (at most `2 x maxFailures` times);
//! * an executor that stops heartbeating, or that a task call cannot reach,
//!   is declared lost: its running tasks are relaunched elsewhere and its
//!   outputs recomputed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use datafusion::common::{DataFusionError, Result};
use datafusion::physical_plan::ExecutionPlan;
use minispark_planner::adaptive::{
    AdaptiveConfig, StageShape, TaskShape, adaptive_readers, bind_tasks, broadcast_reader,
    describe_stage, local_reader, plan_stage, switch_join, switch_to_sort_merge,
};
use minispark_planner::codec::encode_plan;
use minispark_planner::exchange::{
    BlockStats, ExchangeKind, HotKey, MapOutput, ShuffleReaderExec, assign_blocks, merge_hot_keys,
};
use minispark_planner::explain::StageMetrics;
use minispark_planner::stages::{Stage, StageGraph, collect_readers, replace_readers};
use minispark_proto::{TaskDefinition, TaskStatus, task_status};
use tokio::task::JoinSet;
use tracing::{Instrument, Span, debug, info, info_span, warn};

use crate::cluster::{Cluster, ExecutorHandle};
use crate::ids::{JobId, StageId, TaskAttempt};
use crate::job_counters::JobCounters;
use crate::map_output_tracker::MapOutputTracker;

/// How a job ended well: where its result blocks are, and what each stage did.
#[derive(Debug)]
pub struct JobOutput {
    /// The final stage's outputs, one per result partition, in order.
    pub result: Vec<MapOutput>,
    pub metrics: Vec<StageMetrics>,
}

/// The scheduler's state of one stage. Its map outputs are in the job's
/// [`MapOutputTracker`].
#[derive(Debug)]
struct StageState {
    /// The attempt running for each partition, and where.
    running: HashMap<usize, RunningTask>,
    failures: Vec<u32>,
    fetch_failures: Vec<u32>,
    excluded: Vec<HashSet<String>>,
    /// The serialized plan with readers bound, once inputs are complete.
    plan_bytes: Option<Arc<Vec<u8>>>,
    /// The bound plan's reader block lists (for locality and metrics).
    reader_blocks: Vec<(
        ExchangeKind,
        Vec<Vec<minispark_planner::exchange::BlockLocation>>,
    )>,
    task_times: Vec<Duration>,
    bytes_remote: u64,
    /// Rows the successful tasks read from scans.
    scanned_rows: u64,
    /// Bytes its successful tasks spilled to disk.
    spilled_bytes: u64,
    /// The tasks adaptive execution chose (and whether it switched the
    /// stage's join to a broadcast join), once the stage is first bound;
    /// kept when it is bound again (a lost input recomputed), so finished
    /// tasks stay valid.
    shapes: Option<StageShape>,
    /// Whether the stage's readers were bound once already (a new binding
    /// is then a re-binding, after an input lost outputs).
    bound_before: bool,
    /// The stage's tracing span, inside the job's; its tasks' spans are in it.
    span: Span,
}

/// Where a task's current attempt runs.
#[derive(Debug, PartialEq, Eq)]
struct RunningTask {
    executor_id: String,
    attempt: u32,
}

impl StageState {
    fn new(job: &Span, id: StageId, num_tasks: usize) -> Self {
        Self {
            span: info_span!(parent: job, "stage", stage = %id),
            running: HashMap::new(),
            failures: vec![0; num_tasks],
            fetch_failures: vec![0; num_tasks],
            excluded: vec![HashSet::new(); num_tasks],
            plan_bytes: None,
            reader_blocks: vec![],
            task_times: vec![],
            bytes_remote: 0,
            scanned_rows: 0,
            spilled_bytes: 0,
            shapes: None,
            bound_before: false,
        }
    }

    /// Gives the stage `n` tasks that have not run yet (adaptive execution
    /// reshaped it).
    fn reset_tasks(&mut self, n: usize) {
        self.failures = vec![0; n];
        self.fetch_failures = vec![0; n];
        self.excluded = vec![HashSet::new(); n];
    }
}

/// How a task call ended.
struct TaskResult {
    task: TaskAttempt,
    executor: ExecutorHandle,
    result: std::result::Result<TaskStatus, tonic::Status>,
}

/// Runs a job to completion. Dropping the returned future cancels it: every
/// in-flight task call is dropped, which aborts the task on its executor.
/// `counters` count what happened, whether the job succeeds or fails.
///
/// Logs are in tracing spans `job{job_id}` > `stage{stage}` >
/// `task{partition, attempt, executor_id}`; the executor runs each task in a
/// `task{job_id, stage, partition, attempt}` span of its own.
pub async fn run_job(
    cluster: Arc<Cluster>,
    job_id: JobId,
    graph: &StageGraph,
    settings: HashMap<String, String>,
    max_failures: u32,
    adaptive: Option<AdaptiveConfig>,
    counters: &mut JobCounters,
) -> Result<JobOutput> {
    let job = JobRun::new(
        cluster,
        job_id,
        graph,
        settings,
        max_failures,
        adaptive,
        counters,
    );
    let span = job.span.clone();
    job.run().instrument(span).await
}

/// One job being run: the scheduler's state between two events.
struct JobRun<'a> {
    cluster: Arc<Cluster>,
    job_id: JobId,
    graph: &'a StageGraph,
    settings: HashMap<String, String>,
    max_failures: u32,
    adaptive: Option<AdaptiveConfig>,
    /// The final stage's id: the job is done when it is complete.
    final_id: StageId,
    /// Per stage: running tasks, failures, the bound plan, measurements.
    stages: Vec<StageState>,
    /// Which map tasks have their output, and where it is.
    map_outputs: MapOutputTracker,
    /// The task calls under way.
    inflight: JoinSet<TaskResult>,
    /// Executors seen alive during the job: one that leaves this set is lost.
    seen_live: HashSet<String>,
    counters: &'a mut JobCounters,
    /// The job's tracing span: its stages' spans are in it.
    span: Span,
}

impl<'a> JobRun<'a> {
    fn new(
        cluster: Arc<Cluster>,
        job_id: JobId,
        graph: &'a StageGraph,
        settings: HashMap<String, String>,
        max_failures: u32,
        adaptive: Option<AdaptiveConfig>,
        counters: &'a mut JobCounters,
    ) -> Self {
        let span = info_span!("job", job_id = %job_id);
        let stages = graph
            .stages
            .iter()
            .map(|s| StageState::new(&span, StageId(s.id), s.num_tasks()))
            .collect();
        counters.broadcast_stages = graph
            .stages
            .iter()
            .filter(|s| s.writer().kind() == ExchangeKind::Broadcast)
            .count() as u64;
        Self {
            cluster,
            job_id,
            graph,
            settings,
            max_failures,
            adaptive,
            final_id: StageId(graph.final_stage().id),
            stages,
            map_outputs: MapOutputTracker::new(graph.stages.iter().map(Stage::num_tasks)),
            inflight: JoinSet::new(),
            seen_live: HashSet::new(),
            counters,
            span,
        }
    }

    /// The scheduler loop (see the module docs).
    async fn run(mut self) -> Result<JobOutput> {
        info!(
            job_id = %self.job_id,
            stages = self.graph.stages.len(),
            "job started"
        );
        loop {
            self.handle_lost_executors();
            if self.map_outputs.is_complete(self.final_id) {
                break;
            }
            self.check_executors_left()?;
            self.launch_ready_tasks()?;
            self.handle_one_event().await?;
        }
        info!(job_id = %self.job_id, "job finished");
        Ok(self.output())
    }

    /// Forgets the work that lived on executors that are gone: their
    /// running tasks (to be launched again) and their map outputs (to be
    /// recomputed; the stages reading them will be bound again).
    fn handle_lost_executors(&mut self) {
        let live = self.cluster.live_ids();
        self.counters.executors_lost += self.seen_live.difference(&live).count() as u64;
        self.seen_live.clone_from(&live);
        for state in &mut self.stages {
            let before = state.running.len();
            state
                .running
                .retain(|_, task| live.contains(&task.executor_id));
            self.counters.failed_attempts += (before - state.running.len()) as u64;
        }
        let lost_outputs = self.map_outputs.remove_outputs_on_lost_executors(&live);
        self.counters.recomputed_map_outputs += lost_outputs.len() as u64;
        for id in lost_outputs {
            debug!(
                job_id = %self.job_id,
                stage = %id,
                "recomputing output of a lost executor"
            );
            for consumer in self.graph.consumers(id.0) {
                self.stages[consumer].plan_bytes = None;
            }
        }
    }

    /// Fails the job when no executor is left to run it.
    fn check_executors_left(&self) -> Result<()> {
        if self.seen_live.is_empty() && self.inflight.is_empty() {
            return Err(DataFusionError::Execution(format!(
                "job {}: no executors are alive to run it",
                self.job_id
            )));
        }
        Ok(())
    }

    /// Launches the tasks that can run on free slots: those of every stage
    /// whose inputs are complete, binding the stage's readers first when
    /// they are not bound.
    fn launch_ready_tasks(&mut self) -> Result<()> {
        let graph = self.graph;
        for stage in &graph.stages {
            let id = StageId(stage.id);
            let inputs_ready = stage
                .inputs
                .iter()
                .all(|i| self.map_outputs.is_complete(StageId(*i)));
            if !inputs_ready || self.map_outputs.is_complete(id) {
                continue;
            }
            if self.stages[id.0].plan_bytes.is_none() {
                self.bind_stage(stage)?;
            }
            for p in 0..self.map_outputs.num_tasks(id) {
                let state = &self.stages[id.0];
                if self.map_outputs.has_output(id, p) || state.running.contains_key(&p) {
                    continue;
                }
                let preferred = preferred_executor(&state.reader_blocks, p);
                let Some(executor) = self
                    .cluster
                    .try_acquire(preferred.as_deref(), &state.excluded[p])
                else {
                    break;
                };
                let task = TaskAttempt {
                    stage: id,
                    partition: p,
                    attempt: state.failures[p] + state.fetch_failures[p],
                };
                self.launch(task, executor);
            }
        }
        Ok(())
    }

    /// Binds `stage`'s readers to its inputs' blocks (see [`bind_readers`]).
    fn bind_stage(&mut self, stage: &Stage) -> Result<()> {
        let _span = self.stages[stage.id].span.clone().entered();
        // Adaptive execution reshapes a stage's tasks, except one whose
        // output is read partition by partition.
        let id = StageId(stage.id);
        let adaptive = self
            .adaptive
            .filter(|_| stage.writer().kind() != ExchangeKind::Forward || id == self.final_id);
        let (bytes, blocks, shapes) = bind_readers(
            &self.job_id,
            stage,
            &self.stages,
            &self.map_outputs,
            adaptive.as_ref(),
        )?;
        let state = &mut self.stages[id.0];
        if state.bound_before {
            self.counters.stages_rebound += 1;
        }
        state.bound_before = true;
        if let Some(shapes) = shapes
            && state.shapes.is_none()
        {
            count_adaptive(self.counters, stage, &shapes);
            let n = shapes.tasks.len();
            self.map_outputs.reshape(id, n);
            state.reset_tasks(n);
            state.shapes = Some(shapes);
        }
        state.plan_bytes = Some(Arc::new(bytes));
        state.reader_blocks = blocks;
        Ok(())
    }

    /// Sends `task` to `executor`, whose slot is taken.
    fn launch(&mut self, task: TaskAttempt, executor: ExecutorHandle) {
        let state = &mut self.stages[task.stage.0];
        let p = task.partition;
        state.running.insert(
            p,
            RunningTask {
                executor_id: executor.id.clone(),
                attempt: task.attempt,
            },
        );
        self.counters.task_attempts += 1;
        state.bytes_remote += remote_bytes(&state.reader_blocks, p, &executor.id);
        let definition = TaskDefinition {
            job_id: self.job_id.to_string(),
            stage_id: task.stage.0 as u32,
            partition: p as u32,
            attempt: task.attempt,
            plan: state.plan_bytes.as_ref().expect("bound").to_vec(),
            settings: self.settings.clone(),
        };
        let cluster = Arc::clone(&self.cluster);
        let span = info_span!(
            parent: &state.span,
            "task",
            partition = p,
            attempt = task.attempt,
            executor_id = %executor.id
        );
        let call = async move {
            // Gives the slot back however the call ends, including when the
            // job is cancelled and this future dropped.
            let _slot = SlotGuard {
                cluster,
                executor_id: executor.id.clone(),
            };
            let mut client = executor.client.clone();
            let sent = std::time::Instant::now();
            let result = client.launch_task(definition).await.map(|r| r.into_inner());
            debug!(
                %task,
                round_trip_us = sent.elapsed().as_micros() as u64,
                "task call returned"
            );
            TaskResult {
                task,
                executor,
                result,
            }
        };
        self.inflight.spawn(call.instrument(span));
    }

    /// Waits for one thing to happen: a task call returns (handled here),
    /// the cluster changes (an executor came or went), or a quarter second
    /// passes.
    async fn handle_one_event(&mut self) -> Result<()> {
        let changed = self.cluster.changed.notified();
        tokio::select! {
            Some(done) = self.inflight.join_next(), if !self.inflight.is_empty() => {
                let done = done.map_err(|e| DataFusionError::Execution(format!("task call failed: {e}")))?;
                self.handle_result(done)
            }
            _ = changed => Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(250)) => Ok(()),
        }
    }

    /// What the job measured, and where its result is.
    fn output(self) -> JobOutput {
        JobOutput {
            metrics: stage_metrics(self.graph, &self.stages, &self.map_outputs),
            result: self.map_outputs.outputs(self.final_id).cloned().collect(),
        }
    }

    /// A task call returned: record its output, or apply the failure rules
    /// of the module docs.
    fn handle_result(&mut self, done: TaskResult) -> Result<()> {
        let (job_id, max_failures) = (&self.job_id, self.max_failures);
        let task = done.task;
        let (stage, p) = (task.stage, task.partition);
        let state = &mut self.stages[stage.0];
        let _span = state.span.clone().entered();
        // A result for an attempt we no longer track (its executor was
        // declared lost meanwhile, and the attempt counted as failed then)
        // is ignored.
        let tracked = RunningTask {
            executor_id: done.executor.id.clone(),
            attempt: task.attempt,
        };
        if state.running.get(&p) != Some(&tracked) {
            return Ok(());
        }
        state.running.remove(&p);
        let failure = match done.result {
            Ok(TaskStatus {
                status: Some(task_status::Status::Completed(out)),
            }) => {
                state.task_times.push(Duration::from_micros(out.elapsed_us));
                state.scanned_rows += out.input_rows;
                state.spilled_bytes += out.spilled_bytes;
                self.counters.spilled_bytes += out.spilled_bytes;
                self.counters.spill_count += out.spill_count;
                let output = map_output(&done.executor, p, &out);
                self.map_outputs.register(stage, p, output);
                return Ok(());
            }
            Ok(TaskStatus {
                status: Some(task_status::Status::Failed(f)),
            }) => {
                self.counters.failed_attempts += 1;
                if f.fetch_failed {
                    // The data this task needed is gone with its executor:
                    // recompute it, then run this task again.
                    state.fetch_failures[p] += 1;
                    warn!(
                        %job_id,
                        %task,
                        lost_executor = f.failed_executor_id,
                        block = ?f.failed_block,
                        "task could not fetch its input"
                    );
                    if state.fetch_failures[p] > 2 * max_failures {
                        return Err(DataFusionError::Execution(format!(
                            "job {job_id}: stage {stage} partition {p} could not fetch its input {} times: {}",
                            state.fetch_failures[p], f.message
                        )));
                    }
                    self.cluster.mark_lost(
                        &f.failed_executor_id,
                        "its shuffle output could not be fetched",
                    );
                    return Ok(());
                }
                f.message
            }
            Ok(TaskStatus { status: None }) => {
                self.counters.failed_attempts += 1;
                "executor sent an empty task status".to_string()
            }
            Err(status) => {
                self.counters.failed_attempts += 1;
                // The executor could not be reached or died during the task.
                let msg = format!("executor unreachable: {}", status.message());
                if matches!(
                    status.code(),
                    tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
                ) {
                    self.cluster.mark_lost(&done.executor.id, &msg);
                }
                msg
            }
        };
        state.failures[p] += 1;
        state.excluded[p].insert(done.executor.id.clone());
        warn!(
            %job_id,
            %task,
            executor_id = done.executor.id,
            failures = state.failures[p],
            error = failure,
            "task failed"
        );
        if state.failures[p] >= max_failures {
            return Err(DataFusionError::Execution(format!(
                "job failed: stage {stage} partition {p} failed {} times (minispark.task.maxFailures = {max_failures}); \
                 last failure on executor {}: {failure}",
                state.failures[p], done.executor.id
            )));
        }
        Ok(())
    }
}

/// The map output a finished task reported.
fn map_output(executor: &ExecutorHandle, p: usize, out: &minispark_proto::MapOutput) -> MapOutput {
    MapOutput {
        executor_id: executor.id.clone(),
        address: executor.address.clone(),
        map_partition: p,
        blocks: out
            .partitions
            .iter()
            .map(|b| BlockStats {
                reduce_partition: b.partition as usize,
                rows: b.rows,
                bytes: b.bytes,
            })
            .collect(),
        hot_keys: out
            .hot_keys
            .iter()
            .map(|k| HotKey {
                hash: k.hash,
                display: k.display.clone(),
                estimated_rows: k.estimated_rows,
                partition: k.partition as usize,
            })
            .collect(),
    }
}

/// Counts what adaptive execution decided for `stage` the first time it
/// was bound.
fn count_adaptive(counters: &mut JobCounters, stage: &Stage, shape: &StageShape) {
    let partitions = stage
        .writer()
        .input()
        .properties()
        .partitioning
        .partition_count();
    if describe_stage(partitions, shape).is_some() {
        counters.adaptive_decisions += 1;
    }
    if shape.broadcast.is_some() {
        counters.broadcast_switches += 1;
    }
    let split: HashSet<usize> = shape
        .tasks
        .iter()
        .filter_map(|t| match t {
            TaskShape::Split { partition, .. } => Some(*partition),
            _ => None,
        })
        .collect();
    counters.skew_splits += split.len() as u64;
}

/// A task slot taken on an executor, released when dropped.
struct SlotGuard {
    cluster: Arc<Cluster>,
    executor_id: String,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.cluster.release(&self.executor_id);
    }
}

/// Binds a stage's readers to the blocks of its finished inputs and
/// serializes the plan. With `adaptive`, a stage that qualifies gets its
/// tasks from the inputs' sizes, and its shuffled join may become a
/// broadcast join (see `minispark_planner::adaptive`); the shape chosen is
/// returned (or the one it already had is reused).
#[allow(clippy::type_complexity)]
fn bind_readers(
    job_id: &JobId,
    stage: &Stage,
    stages: &[StageState],
    map_outputs: &MapOutputTracker,
    adaptive: Option<&AdaptiveConfig>,
) -> Result<(
    Vec<u8>,
    Vec<(
        ExchangeKind,
        Vec<Vec<minispark_planner::exchange::BlockLocation>>,
    )>,
    Option<StageShape>,
)> {
    // Every reader's blocks per partition, in reader order (the order in
    // which `replace_readers` visits them below).
    let mut assigned = vec![];
    collect_readers(&stage.plan, &mut |reader| {
        let outputs: Vec<MapOutput> = map_outputs
            .outputs(StageId(reader.stage_id()))
            .cloned()
            .collect();
        let partitions = assign_blocks(
            job_id.as_str(),
            reader.stage_id(),
            reader.kind(),
            reader.partitioning().partition_count(),
            &outputs,
        );
        assigned.push((reader.kind(), partitions));
    });
    let shapes = match (adaptive, adaptive_readers(&stage.plan)) {
        (Some(config), Some(splittable)) => {
            let hash_inputs: Vec<_> = assigned
                .iter()
                .filter(|(kind, _)| *kind == ExchangeKind::Hash)
                .map(|(_, partitions)| partitions.clone())
                .collect();
            // Tasks can only be reshaped when each task of the stage is one
            // partition of every hash reader: all readers partitioned alike,
            // and no operator (a UNION, say) changing the partition count.
            let n = hash_inputs.first().map(Vec::len).unwrap_or(0);
            let one_to_one = hash_inputs.iter().all(|r| r.len() == n)
                && stage
                    .writer()
                    .input()
                    .properties()
                    .partitioning
                    .partition_count()
                    == n;
            match (one_to_one, &stages[stage.id].shapes) {
                (_, Some(shapes)) => Some(shapes.clone()),
                (true, None) => Some(plan_stage(
                    &stage.plan,
                    stage.join,
                    &hash_inputs,
                    &splittable,
                    config,
                )),
                (false, None) => None,
            }
        }
        _ => None,
    };
    let mut bound = vec![];
    let mut inputs = assigned.into_iter();
    let mut hash_index = 0;
    let plan = replace_readers(
        Arc::clone(&stage.plan),
        &mut |reader: &ShuffleReaderExec| {
            let Some((_, partitions)) = inputs.next() else {
                return Err(DataFusionError::Internal(
                    "a reader appeared that was not there when the blocks were assigned".into(),
                ));
            };
            let resolved = match (&shapes, reader.kind()) {
                (Some(shape), ExchangeKind::Hash) => {
                    let index = hash_index;
                    hash_index += 1;
                    match &shape.broadcast {
                        // The small side of a join switched to broadcast:
                        // every task reads all of it.
                        Some(switch) if switch.build_reader() == index => {
                            let all: Vec<_> = partitions.into_iter().flatten().collect();
                            bound.push((ExchangeKind::Broadcast, vec![all.clone()]));
                            broadcast_reader(reader, all)?
                        }
                        Some(_) => {
                            let tasks = bind_tasks(&shape.tasks, index, &partitions);
                            bound.push((reader.kind(), tasks.clone()));
                            local_reader(reader, tasks)?
                        }
                        None => {
                            let tasks = bind_tasks(&shape.tasks, index, &partitions);
                            bound.push((reader.kind(), tasks.clone()));
                            reader.resolved_tasks(tasks)
                        }
                    }
                }
                _ => {
                    bound.push((reader.kind(), partitions.clone()));
                    reader.resolved(partitions)?
                }
            };
            Ok(Arc::new(resolved) as Arc<dyn ExecutionPlan>)
        },
    )?;
    let plan = match shapes.as_ref().and_then(|s| s.broadcast.as_ref()) {
        Some(switch) => switch_join(plan, switch)?,
        None => plan,
    };
    let plan = match shapes.as_ref().and_then(|s| s.sort_merge.as_ref()) {
        Some(switch) => switch_to_sort_merge(plan, switch)?,
        None => plan,
    };
    let mut unresolved = 0;
    collect_readers(&plan, &mut |r| {
        if r.partitions().is_none() {
            unresolved += 1;
        }
    });
    if unresolved > 0 {
        return Err(DataFusionError::Internal(format!(
            "{unresolved} readers left unbound"
        )));
    }
    Ok((encode_plan(plan)?, bound, shapes))
}

/// The executor holding the most input bytes of partition `p`.
fn preferred_executor(
    readers: &[(
        ExchangeKind,
        Vec<Vec<minispark_planner::exchange::BlockLocation>>,
    )],
    p: usize,
) -> Option<String> {
    let mut bytes: HashMap<&str, u64> = HashMap::new();
    for (kind, partitions) in readers {
        if *kind == ExchangeKind::Broadcast {
            continue;
        }
        if let Some(blocks) = partitions.get(p) {
            for b in blocks {
                *bytes.entry(b.executor_id.as_str()).or_default() += b.bytes.max(1);
            }
        }
    }
    bytes
        .into_iter()
        .max_by_key(|(_, b)| *b)
        .map(|(e, _)| e.to_string())
}

fn remote_bytes(
    readers: &[(
        ExchangeKind,
        Vec<Vec<minispark_planner::exchange::BlockLocation>>,
    )],
    p: usize,
    executor: &str,
) -> u64 {
    readers
        .iter()
        .flat_map(|(kind, parts)| {
            let idx = if *kind == ExchangeKind::Broadcast {
                0
            } else {
                p
            };
            parts.get(idx).into_iter().flatten()
        })
        .filter(|b| b.executor_id != executor)
        .map(|b| b.bytes)
        .sum()
}

fn stage_metrics(
    graph: &StageGraph,
    stages: &[StageState],
    map_outputs: &MapOutputTracker,
) -> Vec<StageMetrics> {
    graph
        .stages
        .iter()
        .map(|stage| {
            let state = &stages[stage.id];
            let id = StageId(stage.id);
            let outputs: Vec<&MapOutput> = map_outputs.outputs(id).collect();
            let (mut rows_in, mut bytes_in) = (state.scanned_rows, 0);
            for (kind, parts) in &state.reader_blocks {
                let copies = if *kind == ExchangeKind::Broadcast {
                    map_outputs.num_tasks(id) as u64
                } else {
                    1
                };
                for b in parts.iter().flatten() {
                    rows_in += b.rows * copies;
                    bytes_in += b.bytes * copies;
                }
            }
            StageMetrics {
                rows_in,
                bytes_in,
                rows_out: outputs.iter().flat_map(|o| &o.blocks).map(|b| b.rows).sum(),
                bytes_out: outputs
                    .iter()
                    .flat_map(|o| &o.blocks)
                    .map(|b| b.bytes)
                    .sum(),
                bytes_remote: state.bytes_remote,
                spilled_bytes: state.spilled_bytes,
                task_times: state.task_times.clone(),
                partitions: map_outputs.partition_sizes(id, stage.writer().num_partitions()),
                adaptive: state.shapes.as_ref().and_then(|shapes| {
                    describe_stage(
                        stage
                            .writer()
                            .input()
                            .properties()
                            .partitioning
                            .partition_count(),
                        shapes,
                    )
                }),
                hot_keys: merge_hot_keys(outputs.iter().flat_map(|o| &o.hot_keys), 5),
                map_outputs: outputs
                    .iter()
                    .map(|o| (o.map_partition, o.executor_id.clone(), o.blocks.clone()))
                    .collect(),
            }
        })
        .collect()
}
