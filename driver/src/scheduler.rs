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
//! the stage gets the same bytes and its own partition number. A stage with
//! a runtime filter (`minispark_planner::runtime_filter`) also reads the
//! stage whose keys filter it, so it waits for that one; when it is bound,
//! the filter is kept if that stage measured small, else taken out.
//!
//! The scheduler loop of [`run_job`], one turn per event:
//!
//! ```text
//!   loop {
//!       handle_lost_executors   forget running tasks and map outputs of executors
//!                               that are gone; unbind the stages reading them
//!       final stage complete?   then the job is done
//!       check_executors_left    no executor alive and no call under way: fail
//!       expire_slow_attempts    cancel and fail attempts past minispark.task.timeout
//!       launch_ready_tasks      bind each stage whose inputs are complete, launch
//!                               its missing tasks on free slots
//!       launch_speculative      with minispark.speculation: a second attempt of
//!                               each straggler, on another executor's free slot
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
//!   until `minispark.task.maxFailures` attempts have failed; except when
//!   its error depends only on the data and the plan (a division by zero,
//!   a bad cast, an overflow: the executor says so, from the error's type,
//!   see `minispark_planner::user_errors`): then the job fails at once;
//! * a task that could not fetch a block (the executor reports a typed
//!   `FetchFailed`, see `minispark_planner::exchange::FetchFailed`): when
//!   the block is really gone (its executor answered that it does not have
//!   it, or that executor is lost), its map output is recomputed, then the
//!   task runs again (at most `2 x maxFailures` times); when its executor is
//!   alive but could not be reached even after the fetch's retries, the task
//!   fails as for any other error. No executor is evicted for a fetch
//!   failure: only heartbeats and task calls decide that one is lost;
//! * an executor that stops heartbeating, or that a task call cannot reach,
//!   is declared lost: its running tasks are relaunched elsewhere and its
//!   outputs recomputed;
//! * an attempt running longer than `minispark.task.timeout` is cancelled
//!   and fails like any failed attempt ([`crate::task_timeout`]);
//! * result blocks the driver cannot read once the job has finished (their
//!   executor died before they were read): the job's state is kept
//!   ([`FinishedJob`]) and the loop above runs again for the lost result
//!   tasks ([`crate::results::ResultReader`]).
//!
//! A task may have two attempts running at once: a straggler and its
//! speculative copy ([`crate::speculation`]). Every attempt of a task has its
//! own number. The first attempt to finish wins: its output is recorded and
//! the task's other attempts are cancelled; a result that still arrives from
//! one of them is ignored, so a loser's output never replaces the winner's.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::common::{DataFusionError, Result};
use datafusion::physical_plan::ExecutionPlan;
use minispark_planner::adaptive::{
    AdaptiveConfig, StageShape, TaskShape, adaptive_readers, bind_tasks, broadcast_reader,
    describe_stage, local_reader, plan_rebalance_tasks, plan_stage, sort_merge_after_out_of_memory,
    switch_join, switch_to_sort_merge,
};
use minispark_planner::codec::encode_plan;
use minispark_planner::exchange::{
    BlockStats, ExchangeKind, HotKey, MapOutput, ShuffleReaderExec, assign_blocks, merge_hot_keys,
};
use minispark_planner::explain::StageMetrics;
use minispark_planner::repartition::shuffle_origin::StageAdaptivity;
use minispark_planner::runtime_filter::{keeps_filter, without_runtime_filter};
use minispark_planner::stages::{Stage, StageGraph, collect_readers, replace_readers};
use minispark_proto::{TaskDefinition, TaskStatus, task_status};
use tokio::task::{AbortHandle, JoinSet};
use tracing::{Instrument, Span, debug, info, info_span, warn};

use crate::cluster::{Cluster, ExecutorHandle};
use crate::ids::{JobId, StageId, TaskAttempt};
use crate::job_counters::JobCounters;
use crate::map_output_tracker::MapOutputTracker;
use crate::speculation::SpeculationConfig;
use crate::status_store::{HotKeyInfo, PartitionSize, StatusEvent, TaskMetrics, now_ms};
use crate::task_timeout::is_timed_out;

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
    /// The attempts running for each partition (two when one is a
    /// speculative copy), and where. A partition has no entry when none runs.
    running: HashMap<usize, Vec<RunningTask>>,
    /// The number of the next attempt of each partition: no two attempts
    /// of a task share one (a speculative copy, a recompute after a lost
    /// output included), and map outputs are committed per attempt.
    next_attempt: Vec<u32>,
    /// How long each successful attempt took, as the driver saw it (for
    /// speculation's median).
    durations: Vec<Duration>,
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
    /// What became of the stage's runtime filter when it was bound (see
    /// `minispark_planner::runtime_filter`), for EXPLAIN ANALYZE.
    runtime_filter_note: Option<String>,
    /// Whether the stage's readers were bound once already (a new binding
    /// is then a re-binding, after an input lost outputs).
    bound_before: bool,
    /// The stage's tracing span, inside the job's; its tasks' spans are in it.
    span: Span,
}

/// Where an attempt of a task runs, since when.
#[derive(Debug)]
struct RunningTask {
    executor_id: String,
    attempt: u32,
    started: Instant,
    /// Cancels the attempt: drops its call, which aborts it on its executor.
    abort: AbortHandle,
}

impl StageState {
    fn new(job: &Span, id: StageId, num_tasks: usize) -> Self {
        Self {
            span: info_span!(parent: job, "stage", stage = %id),
            running: HashMap::new(),
            next_attempt: vec![0; num_tasks],
            durations: vec![],
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
            runtime_filter_note: None,
            bound_before: false,
        }
    }

    /// Gives the stage `n` tasks that have not run yet (adaptive execution
    /// reshaped it).
    fn reset_tasks(&mut self, n: usize) {
        self.next_attempt = vec![0; n];
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
    let (output, job) = run_job_kept(
        cluster,
        job_id,
        Arc::new(graph.clone()),
        settings,
        max_failures,
        adaptive,
        *counters,
    )
    .await;
    *counters = job.counters();
    output
}

/// [`run_job`], keeping the job's scheduler state: when the driver cannot
/// read result blocks (their executor died after the final stage finished),
/// [`FinishedJob::recompute_results`] runs the lost result tasks again
/// instead of failing the job.
pub async fn run_job_kept(
    cluster: Arc<Cluster>,
    job_id: JobId,
    graph: Arc<StageGraph>,
    settings: HashMap<String, String>,
    max_failures: u32,
    adaptive: Option<AdaptiveConfig>,
    counters: JobCounters,
) -> (Result<JobOutput>, FinishedJob) {
    let mut job = JobRun::new(
        cluster,
        job_id,
        graph,
        settings,
        max_failures,
        adaptive,
        counters,
    );
    let span = job.span.clone();
    let output = job.run().instrument(span).await;
    (output, FinishedJob(Box::new(job)))
}

/// A job that has run: its scheduler state, so that result outputs lost
/// before the driver read them can be computed again (Spark resubmits a
/// lost result stage's tasks the same way).
pub struct FinishedJob(Box<JobRun>);

impl std::fmt::Debug for FinishedJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FinishedJob({})", self.0.job_id)
    }
}

impl FinishedJob {
    /// What the job did, recomputations of results included.
    pub fn counters(&self) -> JobCounters {
        self.0.counters
    }

    /// The result outputs of `lost` partitions (of the final stage) cannot
    /// be read: forgets them, and those of executors now lost, runs the
    /// tasks that computes them again (and any lost input they need), and
    /// returns the final stage's outputs.
    pub async fn recompute_results(&mut self, lost: &[MapOutput]) -> Result<JobOutput> {
        let job = &mut self.0;
        let final_id = job.final_id;
        for output in lost {
            if job.map_outputs.remove_output(
                final_id,
                output.map_partition,
                &output.executor_id,
                output.attempt,
            ) {
                job.counters.recomputed_map_outputs += 1;
                warn!(
                    job_id = %job.job_id,
                    partition = output.map_partition,
                    executor_id = output.executor_id,
                    "a result block cannot be read: its task runs again"
                );
            }
        }
        let span = job.span.clone();
        job.run().instrument(span).await
    }
}

/// One job being run: the scheduler's state between two events.
struct JobRun {
    cluster: Arc<Cluster>,
    job_id: JobId,
    graph: Arc<StageGraph>,
    settings: HashMap<String, String>,
    max_failures: u32,
    adaptive: Option<AdaptiveConfig>,
    /// `minispark.speculation` and its settings, when on.
    speculation: Option<SpeculationConfig>,
    /// `minispark.task.timeout` (zero: none).
    task_timeout: Duration,
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
    counters: JobCounters,
    /// The job's tracing span: its stages' spans are in it.
    span: Span,
}

impl JobRun {
    fn new(
        cluster: Arc<Cluster>,
        job_id: JobId,
        graph: Arc<StageGraph>,
        settings: HashMap<String, String>,
        max_failures: u32,
        adaptive: Option<AdaptiveConfig>,
        mut counters: JobCounters,
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
        // The job's settings, as its tasks get them (the session checked them).
        let config = minispark_planner::session::session_config(&settings)
            .map(|c| minispark_planner::config::minispark_config(c.options()))
            .unwrap_or_else(|e| {
                warn!(%job_id, error = %e, "the job's settings do not parse: speculation and task timeouts off");
                Default::default()
            });
        Self {
            cluster,
            job_id,
            settings,
            max_failures,
            adaptive,
            speculation: SpeculationConfig::from_config(&config),
            task_timeout: config.task_timeout,
            final_id: StageId(graph.final_stage().id),
            stages,
            map_outputs: MapOutputTracker::new(graph.stages.iter().map(Stage::num_tasks)),
            graph,
            inflight: JoinSet::new(),
            seen_live: HashSet::new(),
            counters,
            span,
        }
    }

    /// The scheduler loop (see the module docs).
    async fn run(&mut self) -> Result<JobOutput> {
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
            self.expire_slow_attempts()?;
            self.launch_ready_tasks()?;
            self.launch_speculative();
            if let Err(e) = self.handle_one_event().await {
                // The job fails: its other attempts are cancelled and gone
                // (their slots given back) before it reports the error.
                self.inflight.abort_all();
                while self.inflight.join_next().await.is_some() {}
                return Err(e);
            }
        }
        // Attempts still running are not needed any more (a speculative
        // copy of a task that has its output): cancelled, and forgotten, so
        // that a later recomputation of lost results starts afresh.
        for state in &mut self.stages {
            for attempt in state.running.drain().flat_map(|(_, a)| a) {
                attempt.abort.abort();
            }
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
        let status = &self.cluster.status;
        for (s, state) in self.stages.iter_mut().enumerate() {
            for (&p, attempts) in state.running.iter_mut() {
                let before = attempts.len();
                attempts.retain(|task| {
                    let alive = live.contains(&task.executor_id);
                    if !alive {
                        status.record(StatusEvent::task_failed(
                            self.job_id.as_str(),
                            s,
                            p,
                            task.attempt,
                            &task.executor_id,
                            "its executor was lost".to_string(),
                        ));
                    }
                    alive
                });
                self.counters.failed_attempts += (before - attempts.len()) as u64;
            }
            state.running.retain(|_, attempts| !attempts.is_empty());
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
        let graph = Arc::clone(&self.graph);
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
                    attempt: state.next_attempt[p],
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
        // A runtime filter is kept when its creation side measured small.
        let unfiltered;
        let mut runtime_filter_note = None;
        let stage = match &stage.runtime_filter {
            Some(filter) => {
                let (bytes, rows) = self
                    .map_outputs
                    .outputs(StageId(filter.creation_stage))
                    .flat_map(|o| &o.blocks)
                    .fold((0, 0), |(b, r), block| (b + block.bytes, r + block.rows));
                runtime_filter_note = Some(filter.describe_decision(bytes, rows));
                if keeps_filter(filter, bytes) {
                    if !self.stages[id.0].bound_before {
                        self.counters.runtime_filters += 1;
                    }
                    stage
                } else {
                    unfiltered = Stage {
                        plan: without_runtime_filter(&stage.plan)?,
                        ..stage.clone()
                    };
                    &unfiltered
                }
            }
            None => stage,
        };
        let (bytes, blocks, shapes) = bind_readers(
            &self.job_id,
            stage,
            &self.graph,
            &self.stages,
            &self.map_outputs,
            adaptive.as_ref(),
        )?;
        let state = &mut self.stages[id.0];
        let rebound = state.bound_before;
        if state.bound_before {
            self.counters.stages_rebound += 1;
        }
        state.bound_before = true;
        if let Some(shapes) = shapes
            && state.shapes.is_none()
        {
            count_adaptive(&mut self.counters, stage, &shapes);
            let n = shapes.tasks.len();
            self.map_outputs.reshape(id, n);
            state.reset_tasks(n);
            state.shapes = Some(shapes);
        }
        state.plan_bytes = Some(Arc::new(bytes));
        state.reader_blocks = blocks;
        state.runtime_filter_note = runtime_filter_note;
        self.cluster.status.record(StatusEvent::StageSubmitted {
            job_id: self.job_id.to_string(),
            stage: id.0,
            time_ms: now_ms(),
            tasks: self.map_outputs.num_tasks(id),
            adaptive: stage_note(stage, state),
            rebound,
        });
        Ok(())
    }

    /// Sends `task` to `executor`, whose slot is taken.
    fn launch(&mut self, task: TaskAttempt, executor: ExecutorHandle) {
        let state = &mut self.stages[task.stage.0];
        let p = task.partition;
        state.next_attempt[p] = state.next_attempt[p].max(task.attempt + 1);
        let executor_id = executor.id.clone();
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
        // Gives the slot back however the call ends, including when the job
        // is cancelled and this future dropped. Made here, not inside the
        // future: a future aborted before its first poll (a job failing
        // right after it launched the task) never runs its body, and a
        // guard made there would never exist to give the slot back.
        let slot = SlotGuard {
            cluster,
            executor_id: executor.id.clone(),
        };
        let call = async move {
            let _slot = slot;
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
        let abort = self.inflight.spawn(call.instrument(span));
        self.cluster.status.record(StatusEvent::TaskStart {
            job_id: self.job_id.to_string(),
            stage: task.stage.0,
            partition: p,
            attempt: task.attempt,
            executor_id: executor_id.clone(),
            time_ms: now_ms(),
            speculative: state.running.get(&p).is_some_and(|r| !r.is_empty()),
        });
        state.running.entry(p).or_default().push(RunningTask {
            executor_id,
            attempt: task.attempt,
            started: Instant::now(),
            abort,
        });
    }

    /// Cancels and fails every attempt that has run longer than
    /// `minispark.task.timeout` (see [`crate::task_timeout`]).
    fn expire_slow_attempts(&mut self) -> Result<()> {
        if self.task_timeout.is_zero() {
            return Ok(());
        }
        let timeout = self.task_timeout;
        for (s, state) in self.stages.iter_mut().enumerate() {
            let mut expired = vec![];
            for (&p, attempts) in &mut state.running {
                attempts.retain(|t| {
                    let late = is_timed_out(timeout, t.started.elapsed());
                    if late {
                        t.abort.abort();
                        expired.push((p, t.executor_id.clone(), t.attempt));
                    }
                    !late
                });
            }
            state.running.retain(|_, attempts| !attempts.is_empty());
            for (p, executor_id, attempt) in expired {
                self.cluster.status.record(StatusEvent::task_failed(
                    self.job_id.as_str(),
                    s,
                    p,
                    attempt,
                    &executor_id,
                    format!(
                        "timed out: no result within minispark.task.timeout = {}",
                        minispark_planner::config::show_duration(timeout)
                    ),
                ));
                self.counters.failed_attempts += 1;
                self.counters.timed_out_attempts += 1;
                state.failures[p] += 1;
                state.excluded[p].insert(executor_id.clone());
                let _span = state.span.clone().entered();
                warn!(
                    job_id = %self.job_id,
                    stage = s,
                    partition = p,
                    attempt,
                    executor_id,
                    timeout_ms = timeout.as_millis() as u64,
                    failures = state.failures[p],
                    "task attempt timed out (minispark.task.timeout): cancelled"
                );
                if state.failures[p] >= self.max_failures {
                    return Err(DataFusionError::Execution(format!(
                        "job failed: stage {s} partition {p} failed {} times (minispark.task.maxFailures = {}); \
                         last failure on executor {executor_id}: no result within minispark.task.timeout = {}",
                        state.failures[p],
                        self.max_failures,
                        minispark_planner::config::show_duration(timeout)
                    )));
                }
            }
        }
        Ok(())
    }

    /// With speculation on, launches a second attempt of each task that
    /// runs much longer than its stage's finished ones (the rule is
    /// [`SpeculationConfig::threshold`]), on a free slot of an executor that
    /// is not running it.
    fn launch_speculative(&mut self) {
        let Some(speculation) = self.speculation else {
            return;
        };
        let mut copies = vec![];
        for (s, state) in self.stages.iter().enumerate() {
            if state.running.is_empty() || state.plan_bytes.is_none() {
                continue;
            }
            let id = StageId(s);
            let num_tasks = self.map_outputs.num_tasks(id);
            let done = (0..num_tasks)
                .filter(|&p| self.map_outputs.has_output(id, p))
                .count();
            let Some(threshold) = speculation.threshold(num_tasks, done, &state.durations) else {
                continue;
            };
            for (&p, attempts) in &state.running {
                if let [only] = attempts.as_slice()
                    && only.started.elapsed() > threshold
                {
                    copies.push((id, p, only.executor_id.clone(), threshold));
                }
            }
        }
        for (id, p, running_on, threshold) in copies {
            let state = &self.stages[id.0];
            let mut excluded = state.excluded[p].clone();
            excluded.insert(running_on.clone());
            let Some(executor) = self.cluster.try_acquire(None, &excluded) else {
                // No free slot: try again at the next event.
                return;
            };
            if executor.id == running_on {
                // The only executor with a free slot runs the task already.
                self.cluster.release(&executor.id);
                continue;
            }
            let task = TaskAttempt {
                stage: id,
                partition: p,
                attempt: state.next_attempt[p],
            };
            info!(
                job_id = %self.job_id,
                %task,
                straggler_on = running_on,
                executor_id = executor.id,
                threshold_ms = threshold.as_millis() as u64,
                "speculating a slow task: a second attempt"
            );
            self.counters.speculative_attempts += 1;
            self.launch(task, executor);
        }
    }

    /// Waits for one thing to happen: a task call returns (handled here),
    /// the cluster changes (an executor came or went), or a quarter second
    /// passes.
    async fn handle_one_event(&mut self) -> Result<()> {
        let changed = self.cluster.changed.notified();
        tokio::select! {
            Some(done) = self.inflight.join_next(), if !self.inflight.is_empty() => {
                match done {
                    Ok(done) => self.handle_result(done),
                    // An attempt this scheduler cancelled (a speculation
                    // loser, a timed-out attempt): already accounted for.
                    Err(e) if e.is_cancelled() => Ok(()),
                    Err(e) => Err(DataFusionError::Execution(format!("task call failed: {e}"))),
                }
            }
            _ = changed => Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(250)) => Ok(()),
        }
    }

    /// What the job measured, and where its result is.
    fn output(&self) -> JobOutput {
        JobOutput {
            metrics: stage_metrics(&self.graph, &self.stages, &self.map_outputs),
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
        // declared lost meanwhile, and the attempt counted as failed then;
        // it timed out; or another attempt of the task won) is ignored.
        let Some(attempts) = state.running.get_mut(&p) else {
            return Ok(());
        };
        let Some(index) = attempts
            .iter()
            .position(|t| t.executor_id == done.executor.id && t.attempt == task.attempt)
        else {
            return Ok(());
        };
        let this = attempts.swap_remove(index);
        if attempts.is_empty() {
            state.running.remove(&p);
        }
        // This attempt's failure, for the UI.
        let failed_event = |message: String| {
            StatusEvent::task_failed(
                job_id.as_str(),
                stage.0,
                p,
                task.attempt,
                &done.executor.id,
                message,
            )
        };
        let failure = match done.result {
            Ok(TaskStatus {
                status: Some(task_status::Status::Completed(out)),
            }) => {
                // The first attempt to finish wins: the others are cancelled.
                for loser in state.running.remove(&p).into_iter().flatten() {
                    loser.abort.abort();
                    self.cluster.status.record(StatusEvent::task_failed(
                        job_id.as_str(),
                        stage.0,
                        p,
                        loser.attempt,
                        &loser.executor_id,
                        "cancelled: another attempt of the task finished first".to_string(),
                    ));
                    debug!(
                        %task,
                        loser_attempt = loser.attempt,
                        loser_executor = loser.executor_id,
                        "another attempt of the task finished first: cancelled"
                    );
                }
                state.durations.push(this.started.elapsed());
                state.task_times.push(Duration::from_micros(out.elapsed_us));
                state.scanned_rows += out.input_rows;
                state.spilled_bytes += out.spilled_bytes;
                self.counters.spilled_bytes += out.spilled_bytes;
                self.counters.spill_count += out.spill_count;
                self.counters.broadcast_fetches += out.broadcast_fetches;
                self.counters.remote_bytes_read_to_disk += out.remote_bytes_read_to_disk;
                self.counters.broadcast_hash_tables_built += out.broadcast_hash_tables_built;
                self.cluster.status.record(StatusEvent::TaskEnd {
                    job_id: job_id.to_string(),
                    stage: stage.0,
                    partition: p,
                    attempt: task.attempt,
                    executor_id: done.executor.id.clone(),
                    time_ms: now_ms(),
                    metrics: Some(task_metrics(
                        &state.reader_blocks,
                        p,
                        &done.executor.id,
                        &out,
                    )),
                    error: None,
                });
                let output = map_output(&done.executor, p, &out);
                self.map_outputs.register(stage, p, output);
                if self.map_outputs.is_complete(stage) {
                    self.record_stage_completed(stage);
                }
                return Ok(());
            }
            Ok(TaskStatus {
                status: Some(task_status::Status::Failed(f)),
            }) => {
                self.counters.failed_attempts += 1;
                if f.fetch_failed {
                    self.cluster
                        .status
                        .record(failed_event(format!("fetch failed: {}", f.message)));
                    return self.handle_fetch_failure(task, &done.executor.id, &f);
                }
                if f.deterministic {
                    // Every attempt would fail the same way: no retry.
                    self.cluster.status.record(failed_event(f.message.clone()));
                    return Err(DataFusionError::Execution(format!(
                        "job failed: stage {stage} partition {p} failed on executor {}: {} \
                         (not retried: this error depends only on the data and the plan)",
                        done.executor.id, f.message
                    )));
                }
                // A hash table did not fit after all: the stage's later
                // attempts run its hash joins as sort-merge joins.
                if f.hash_join_out_of_memory
                    && let Some(shape) = state.shapes.as_mut()
                    && shape.broadcast.is_none()
                    && shape.sort_merge.is_none()
                {
                    let stage_plan = &self.graph.stages[stage.0];
                    if let Some(switch) =
                        sort_merge_after_out_of_memory(&stage_plan.plan, stage_plan.join)
                    {
                        warn!(
                            %job_id,
                            %task,
                            executor_id = done.executor.id,
                            "a hash join ran out of memory: the stage's hash joins run as \
                             sort-merge joins from now on"
                        );
                        shape.sort_merge = Some(switch);
                        state.plan_bytes = None;
                        self.counters.adaptive_decisions += 1;
                    }
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
        self.cluster.status.record(failed_event(failure.clone()));
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

impl JobRun {
    /// A task could not read a block of its input (a typed `FetchFailed`
    /// from its executor). A block that is really gone, because its
    /// executor answered that it does not have it or is lost, has its map
    /// output computed again and the task runs again without counting a
    /// failure against it. A block whose executor is alive but could not be
    /// reached even after the fetch's retries fails the task attempt like
    /// any other error (retried, on any executor); no executor is evicted.
    fn handle_fetch_failure(
        &mut self,
        task: TaskAttempt,
        executor_id: &str,
        f: &minispark_proto::TaskFailure,
    ) -> Result<()> {
        let (job_id, max_failures) = (&self.job_id, self.max_failures);
        let (stage, p) = (task.stage, task.partition);
        let holder_lost = !self.cluster.live_ids().contains(&f.failed_executor_id);
        let state = &mut self.stages[stage.0];
        if !f.block_missing && !holder_lost {
            state.failures[p] += 1;
            warn!(
                %job_id,
                %task,
                executor_id,
                holder = f.failed_executor_id,
                failures = state.failures[p],
                error = f.message,
                "task failed: a live executor's block could not be fetched"
            );
            if state.failures[p] >= max_failures {
                return Err(DataFusionError::Execution(format!(
                    "job failed: stage {stage} partition {p} failed {} times (minispark.task.maxFailures = {max_failures}); \
                     last failure on executor {executor_id}: {}",
                    state.failures[p], f.message
                )));
            }
            return Ok(());
        }
        state.fetch_failures[p] += 1;
        warn!(
            %job_id,
            %task,
            holder = f.failed_executor_id,
            holder_lost,
            block_missing = f.block_missing,
            block = ?f.failed_block,
            "task could not fetch its input: recomputing it"
        );
        if state.fetch_failures[p] > 2 * max_failures {
            return Err(DataFusionError::Execution(format!(
                "job {job_id}: stage {stage} partition {p} could not fetch its input {} times: {}",
                state.fetch_failures[p], f.message
            )));
        }
        // A lost executor's outputs are forgotten with it (see
        // `handle_lost_executors`); a missing block's output is forgotten here.
        if let Some(block) = f.failed_block.as_ref().filter(|_| !holder_lost) {
            let input = StageId(block.stage_id as usize);
            if input.0 < self.stages.len()
                && self.map_outputs.remove_output(
                    input,
                    block.map_partition as usize,
                    &f.failed_executor_id,
                    block.map_attempt,
                )
            {
                self.counters.recomputed_map_outputs += 1;
                for consumer in self.graph.consumers(input.0) {
                    self.stages[consumer].plan_bytes = None;
                }
            }
        }
        Ok(())
    }
}

impl JobRun {
    /// Reports a stage whose every task has its output: its output
    /// partition sizes and hot keys, for the UI's histogram.
    fn record_stage_completed(&self, id: StageId) {
        let stage = &self.graph.stages[id.0];
        let sizes = self
            .map_outputs
            .partition_sizes(id, stage.writer().num_partitions());
        let hot_keys = merge_hot_keys(self.map_outputs.outputs(id).flat_map(|o| &o.hot_keys), 5);
        self.cluster.status.record(StatusEvent::StageCompleted {
            job_id: self.job_id.to_string(),
            stage: id.0,
            time_ms: now_ms(),
            partitions: sizes
                .iter()
                .map(|s| PartitionSize {
                    rows: s.rows,
                    bytes: s.bytes,
                })
                .collect(),
            hot_keys: hot_keys
                .into_iter()
                .map(|k| HotKeyInfo {
                    key: k.display,
                    estimated_rows: k.estimated_rows,
                    partition: k.partition,
                })
                .collect(),
        });
    }
}

/// What a successful task did, for the UI: its executor's measurements and
/// the blocks it was bound to read.
fn task_metrics(
    readers: &[(
        ExchangeKind,
        Vec<Vec<minispark_planner::exchange::BlockLocation>>,
    )],
    p: usize,
    executor: &str,
    out: &minispark_proto::MapOutput,
) -> TaskMetrics {
    let bytes_in = readers
        .iter()
        .flat_map(|(kind, parts)| {
            let idx = if *kind == ExchangeKind::Broadcast {
                0
            } else {
                p
            };
            parts.get(idx).into_iter().flatten()
        })
        .map(|b| b.bytes)
        .sum();
    TaskMetrics {
        duration_ms: out.elapsed_us as f64 / 1000.0,
        rows_in: out.input_rows,
        bytes_in,
        rows_out: out.partitions.iter().map(|b| b.rows).sum(),
        bytes_out: out.partitions.iter().map(|b| b.bytes).sum(),
        bytes_remote: remote_bytes(readers, p, executor),
        spilled_bytes: out.spilled_bytes,
    }
}

/// The map output a finished task reported.
fn map_output(executor: &ExecutorHandle, p: usize, out: &minispark_proto::MapOutput) -> MapOutput {
    MapOutput {
        executor_id: executor.id.clone(),
        address: executor.address.clone(),
        map_partition: p,
        attempt: out.attempt,
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

/// The lines EXPLAIN ANALYZE prints under a stage for what was decided
/// when it was bound: its adaptive shape, its runtime filter.
fn stage_note(stage: &Stage, state: &StageState) -> Option<String> {
    let partitions = stage.input_partitions();
    let adaptive = state
        .shapes
        .as_ref()
        .and_then(|shapes| describe_stage(partitions, shapes));
    [adaptive, state.runtime_filter_note.clone()]
        .into_iter()
        .flatten()
        .reduce(|a, b| format!("{a}\n  {b}"))
}

/// Counts what adaptive execution decided for `stage` the first time it
/// was bound.
fn count_adaptive(counters: &mut JobCounters, stage: &Stage, shape: &StageShape) {
    let partitions = stage.input_partitions();
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
    graph: &StageGraph,
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
    // What asked for each hash shuffle read: a partition count the user
    // gave is kept, a REBALANCE rebalanced (see
    // `minispark_planner::repartition::shuffle_origin`).
    let mut hash_origins = vec![];
    collect_readers(&stage.plan, &mut |reader| {
        if reader.kind() == ExchangeKind::Hash {
            hash_origins.push(
                graph
                    .stages
                    .get(reader.stage_id())
                    .map(|s| s.shuffle_origin)
                    .unwrap_or_default(),
            );
        }
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
            let one_to_one =
                hash_inputs.iter().all(|r| r.len() == n) && stage.input_partitions() == n;
            match (one_to_one, &stages[stage.id].shapes) {
                (_, Some(shapes)) => Some(shapes.clone()),
                (true, None) => match StageAdaptivity::of(&hash_origins) {
                    StageAdaptivity::Fixed => None,
                    StageAdaptivity::Rebalance => Some(StageShape {
                        tasks: plan_rebalance_tasks(&hash_inputs[0], config),
                        broadcast: None,
                        sort_merge: None,
                    }),
                    StageAdaptivity::Usual => Some(plan_stage(
                        &stage.plan,
                        stage.join,
                        &hash_inputs,
                        &splittable,
                        config,
                    )),
                },
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
                adaptive: stage_note(stage, state),
                hot_keys: merge_hot_keys(outputs.iter().flat_map(|o| &o.hot_keys), 5),
                map_outputs: outputs
                    .iter()
                    .map(|o| (o.map_partition, o.executor_id.clone(), o.blocks.clone()))
                    .collect(),
            }
        })
        .collect()
}
