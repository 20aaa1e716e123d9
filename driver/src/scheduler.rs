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
//! Failures:
//! * a task that fails is retried, on another executor when there is one,
//!   until `minispark.task.maxFailures` attempts have failed;
//! * a task that could not fetch a block means the executor holding it is
//!   gone: its outputs are recomputed, then the task runs again;
//! * an executor that stops heartbeating is declared lost: its running tasks
//!   are relaunched elsewhere and its outputs recomputed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use datafusion::common::{DataFusionError, Result};
use datafusion::physical_plan::ExecutionPlan;
use minispark_planner::adaptive::{
    AdaptiveConfig, StageShape, TaskShape, adaptive_readers, bind_tasks, broadcast_reader,
    describe_stage, local_reader, plan_stage, switch_join,
};
use minispark_planner::codec::encode_plan;
use minispark_planner::exchange::{
    BlockStats, ExchangeKind, HotKey, MapOutput, ShuffleReaderExec, assign_blocks, merge_hot_keys,
};
use minispark_planner::explain::StageMetrics;
use minispark_planner::stages::{Stage, StageGraph, collect_readers, replace_readers};
use minispark_proto::{TaskDefinition, TaskStatus, task_status};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::cluster::{Cluster, ExecutorHandle};
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
    running: HashMap<usize, (String, u32)>,
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
    /// The tasks adaptive execution chose (and whether it switched the
    /// stage's join to a broadcast join), once the stage is first bound;
    /// kept when it is bound again (a lost input recomputed), so finished
    /// tasks stay valid.
    shapes: Option<StageShape>,
    /// Whether the stage's readers were bound once already (a new binding
    /// is then a re-binding, after an input lost outputs).
    bound_before: bool,
}

struct TaskResult {
    stage: usize,
    partition: usize,
    attempt: u32,
    executor: ExecutorHandle,
    result: std::result::Result<TaskStatus, tonic::Status>,
}

/// Runs a job to completion. Dropping the returned future cancels it: every
/// in-flight task call is dropped, which aborts the task on its executor.
/// `counters` count what happened, whether the job succeeds or fails.
pub async fn run_job(
    cluster: Arc<Cluster>,
    job_id: String,
    graph: &StageGraph,
    settings: HashMap<String, String>,
    max_failures: u32,
    adaptive: Option<AdaptiveConfig>,
    counters: &mut JobCounters,
) -> Result<JobOutput> {
    let mut map_outputs = MapOutputTracker::new(graph.stages.iter().map(Stage::num_tasks));
    let mut stages: Vec<StageState> = graph
        .stages
        .iter()
        .map(|s| {
            let n = s.num_tasks();
            StageState {
                running: HashMap::new(),
                failures: vec![0; n],
                fetch_failures: vec![0; n],
                excluded: vec![HashSet::new(); n],
                plan_bytes: None,
                reader_blocks: vec![],
                task_times: vec![],
                bytes_remote: 0,
                scanned_rows: 0,
                shapes: None,
                bound_before: false,
            }
        })
        .collect();
    let mut inflight: JoinSet<TaskResult> = JoinSet::new();
    let settings = Arc::new(settings);
    let final_id = graph.final_stage().id;
    info!(job_id, stages = graph.stages.len(), "job started");
    counters.broadcast_stages = graph
        .stages
        .iter()
        .filter(|s| s.writer().kind() == ExchangeKind::Broadcast)
        .count() as u64;
    // Executors seen alive during the job: one that leaves this set is lost.
    let mut seen_live: HashSet<String> = HashSet::new();

    loop {
        // 1. Forget work that lived on executors that are gone.
        let live = cluster.live_ids();
        let gone = seen_live.difference(&live).count();
        counters.executors_lost += gone as u64;
        seen_live.clone_from(&live);
        let lost_outputs = map_outputs.remove_outputs_on_lost_executors(&live);
        for state in stages.iter_mut() {
            let before = state.running.len();
            state.running.retain(|_, (exec, _)| live.contains(exec));
            counters.failed_attempts += (before - state.running.len()) as u64;
        }
        counters.recomputed_map_outputs += lost_outputs.len() as u64;
        for id in lost_outputs {
            debug!(job_id, stage = id, "recomputing output of a lost executor");
            for consumer in graph.consumers(id) {
                stages[consumer].plan_bytes = None;
            }
        }
        if map_outputs.is_complete(final_id) {
            break;
        }
        if live.is_empty() && inflight.is_empty() {
            return Err(DataFusionError::Execution(format!(
                "job {job_id}: no executors are alive to run it"
            )));
        }

        // 2. Launch what can run.
        for stage in &graph.stages {
            let inputs_ready = stage.inputs.iter().all(|i| map_outputs.is_complete(*i));
            if !inputs_ready || map_outputs.is_complete(stage.id) {
                continue;
            }
            if stages[stage.id].plan_bytes.is_none() {
                // Adaptive execution reshapes a stage's tasks, except one
                // whose output is read partition by partition.
                let adaptive = adaptive.filter(|_| {
                    stage.writer().kind() != ExchangeKind::Forward || stage.id == final_id
                });
                let (bytes, blocks, shapes) =
                    bind_readers(&job_id, stage, &stages, &map_outputs, adaptive.as_ref())?;
                let state = &mut stages[stage.id];
                if state.bound_before {
                    counters.stages_rebound += 1;
                }
                state.bound_before = true;
                if let Some(shapes) = shapes
                    && state.shapes.is_none()
                {
                    count_adaptive(counters, stage, &shapes);
                    let n = shapes.tasks.len();
                    map_outputs.reshape(stage.id, n);
                    state.failures = vec![0; n];
                    state.fetch_failures = vec![0; n];
                    state.excluded = vec![HashSet::new(); n];
                    state.shapes = Some(shapes);
                }
                state.plan_bytes = Some(Arc::new(bytes));
                state.reader_blocks = blocks;
            }
            let state = &mut stages[stage.id];
            for p in 0..map_outputs.num_tasks(stage.id) {
                if map_outputs.has_output(stage.id, p) || state.running.contains_key(&p) {
                    continue;
                }
                let preferred = preferred_executor(&state.reader_blocks, p);
                let Some(executor) = cluster.try_acquire(preferred.as_deref(), &state.excluded[p])
                else {
                    break;
                };
                let attempt = state.failures[p] + state.fetch_failures[p];
                state.running.insert(p, (executor.id.clone(), attempt));
                counters.task_attempts += 1;
                state.bytes_remote += remote_bytes(&state.reader_blocks, p, &executor.id);
                let task = TaskDefinition {
                    job_id: job_id.clone(),
                    stage_id: stage.id as u32,
                    partition: p as u32,
                    attempt,
                    plan: state.plan_bytes.as_ref().expect("bound above").to_vec(),
                    settings: (*settings).clone(),
                };
                let cluster = Arc::clone(&cluster);
                let stage_id = stage.id;
                inflight.spawn(async move {
                    // Gives the slot back however the call ends, including
                    // when the job is cancelled and this future dropped.
                    let _slot = SlotGuard {
                        cluster,
                        executor_id: executor.id.clone(),
                    };
                    let mut client = executor.client.clone();
                    let sent = std::time::Instant::now();
                    let result = client.launch_task(task).await.map(|r| r.into_inner());
                    debug!(
                        stage = stage_id,
                        partition = p,
                        round_trip_us = sent.elapsed().as_micros() as u64,
                        "task call returned"
                    );
                    TaskResult {
                        stage: stage_id,
                        partition: p,
                        attempt,
                        executor,
                        result,
                    }
                });
            }
        }

        // 3. Wait for something to happen.
        let changed = cluster.changed.notified();
        tokio::select! {
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                let done = done.map_err(|e| DataFusionError::Execution(format!("task call failed: {e}")))?;
                handle_result(&cluster, &job_id, &mut stages, &mut map_outputs, done, max_failures, counters)?;
            }
            _ = changed => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }

    info!(job_id, "job finished");
    let metrics = stage_metrics(graph, &stages, &map_outputs);
    let result = map_outputs.outputs(final_id).cloned().collect();
    Ok(JobOutput { result, metrics })
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

fn handle_result(
    cluster: &Cluster,
    job_id: &str,
    stages: &mut [StageState],
    map_outputs: &mut MapOutputTracker,
    done: TaskResult,
    max_failures: u32,
    counters: &mut JobCounters,
) -> Result<()> {
    let state = &mut stages[done.stage];
    // A result for an attempt we no longer track (its executor was declared
    // lost meanwhile, and the attempt counted as failed then) is ignored.
    if state.running.get(&done.partition) != Some(&(done.executor.id.clone(), done.attempt)) {
        return Ok(());
    }
    state.running.remove(&done.partition);
    if !matches!(
        done.result,
        Ok(TaskStatus {
            status: Some(task_status::Status::Completed(_))
        })
    ) {
        counters.failed_attempts += 1;
    }
    let p = done.partition;
    let failure = match done.result {
        Ok(TaskStatus {
            status: Some(task_status::Status::Completed(out)),
        }) => {
            state.task_times.push(Duration::from_micros(out.elapsed_us));
            state.scanned_rows += out.input_rows;
            let output = MapOutput {
                executor_id: done.executor.id.clone(),
                address: done.executor.address.clone(),
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
            };
            map_outputs.register(done.stage, p, output);
            return Ok(());
        }
        Ok(TaskStatus {
            status: Some(task_status::Status::Failed(f)),
        }) => {
            if f.fetch_failed {
                // The data this task needed is gone with its executor:
                // recompute it, then run this task again.
                state.fetch_failures[p] += 1;
                if state.fetch_failures[p] > 2 * max_failures {
                    return Err(DataFusionError::Execution(format!(
                        "job {job_id}: stage {} partition {p} could not fetch its input {} times: {}",
                        done.stage, state.fetch_failures[p], f.message
                    )));
                }
                cluster.mark_lost(
                    &f.failed_executor_id,
                    "its shuffle output could not be fetched",
                );
                return Ok(());
            }
            f.message
        }
        Ok(TaskStatus { status: None }) => "executor sent an empty task status".to_string(),
        Err(status) => {
            // The executor could not be reached or died during the task.
            let msg = format!("executor unreachable: {}", status.message());
            if matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
            ) {
                cluster.mark_lost(&done.executor.id, &msg);
            }
            msg
        }
    };
    state.failures[p] += 1;
    state.excluded[p].insert(done.executor.id.clone());
    warn!(
        job_id,
        stage = done.stage,
        partition = p,
        executor_id = done.executor.id,
        failures = state.failures[p],
        error = failure,
        "task failed"
    );
    if state.failures[p] >= max_failures {
        return Err(DataFusionError::Execution(format!(
            "job failed: stage {} partition {p} failed {} times (minispark.task.maxFailures = {max_failures}); \
             last failure on executor {}: {failure}",
            done.stage, state.failures[p], done.executor.id
        )));
    }
    Ok(())
}

/// Binds a stage's readers to the blocks of its finished inputs and
/// serializes the plan. With `adaptive`, a stage that qualifies gets its
/// tasks from the inputs' sizes, and its shuffled join may become a
/// broadcast join (see `minispark_planner::adaptive`); the shape chosen is
/// returned (or the one it already had is reused).
#[allow(clippy::type_complexity)]
fn bind_readers(
    job_id: &str,
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
        let outputs: Vec<MapOutput> = map_outputs.outputs(reader.stage_id()).cloned().collect();
        let partitions = assign_blocks(
            job_id,
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
            let outputs: Vec<&MapOutput> = map_outputs.outputs(stage.id).collect();
            let (mut rows_in, mut bytes_in) = (state.scanned_rows, 0);
            for (kind, parts) in &state.reader_blocks {
                let copies = if *kind == ExchangeKind::Broadcast {
                    map_outputs.num_tasks(stage.id) as u64
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
                task_times: state.task_times.clone(),
                partitions: map_outputs.partition_sizes(stage.id, stage.writer().num_partitions()),
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
