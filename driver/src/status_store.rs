//! What the web UI shows, recorded as jobs run: Spark's `AppStatusStore`
//! fed by its `SparkListener` events.
//!
//! The scheduler, the job runner and the cluster registry each report what
//! happens as a [`StatusEvent`] (job, stage and task start and end with the
//! task's metrics, a stage's output partition sizes and hot keys, adaptive
//! decisions, executors added and lost). [`StatusStore::record`] applies an
//! event to an in-memory model under a short lock (no await while it is
//! held) and, when the job asked for one, appends it to its event log
//! ([`crate::event_log`]). The same events read back from an event log
//! rebuild the same model ([`StatusStore::replay`]): the history server is
//! the live UI over replayed events.
//!
//! The store is bounded: it keeps the last [`StatusStore::retained_jobs`]
//! jobs (Spark's `spark.ui.retainedJobs`), and at most
//! [`MAX_TASKS_PER_STAGE`] task records per stage.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use minispark_planner::exchange::ExchangeKind;
use minispark_planner::skew::SkewRule;
use minispark_planner::stages::StageGraph;
use serde::{Deserialize, Serialize};

use crate::driver_metrics::DriverMetrics;
use crate::event_log::EventLog;

/// Jobs kept when nothing else is said (Spark's `spark.ui.retainedJobs`
/// defaults to 1000; minispark's jobs keep every task, so fewer).
pub const DEFAULT_RETAINED_JOBS: usize = 100;

/// Task records kept per stage; later attempts are counted, not kept.
pub const MAX_TASKS_PER_STAGE: usize = 10_000;

/// Milliseconds since the Unix epoch: event times survive a restart (the
/// history server shows them as they were).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A stage as planned: what the job page draws.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageInfo {
    pub id: usize,
    /// Tasks as planned (adaptive execution may change them; see
    /// [`StatusEvent::StageSubmitted`]).
    pub tasks: usize,
    /// Stages whose output it reads.
    pub inputs: Vec<usize>,
    /// How its output is exchanged: hash, round-robin, merge, broadcast,
    /// forward, or result.
    pub exchange: String,
    /// Its output partitions.
    pub partitions: usize,
    /// The operators of the stage, top one first, as EXPLAIN names them.
    pub operators: Vec<String>,
}

/// How a stage's output travels, in the words of the UI.
pub fn exchange_name(kind: ExchangeKind) -> &'static str {
    match kind {
        ExchangeKind::Hash => "hash shuffle",
        ExchangeKind::RoundRobin => "round-robin",
        ExchangeKind::Single => "merge",
        ExchangeKind::Broadcast => "broadcast",
        ExchangeKind::Forward => "forward",
        ExchangeKind::Range => "range shuffle",
    }
}

impl StageInfo {
    /// The stages of `graph`.
    pub fn from_graph(graph: &StageGraph) -> Vec<StageInfo> {
        let final_id = graph.final_stage().id;
        graph
            .stages
            .iter()
            .map(|s| {
                let mut operators = vec![];
                let mut node = Some(std::sync::Arc::clone(s.writer().input()));
                while let Some(plan) = node {
                    operators.push(plan.name().to_string());
                    node = plan.children().first().map(|c| std::sync::Arc::clone(c));
                    if operators.len() > 32 {
                        break;
                    }
                }
                StageInfo {
                    id: s.id,
                    tasks: s.num_tasks(),
                    inputs: s.inputs.clone(),
                    exchange: if s.id == final_id {
                        "result".into()
                    } else {
                        exchange_name(s.writer().kind()).into()
                    },
                    partitions: s.writer().num_partitions(),
                    operators,
                }
            })
            .collect()
    }
}

/// What one successful task did.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct TaskMetrics {
    /// Wall time on the executor.
    pub duration_ms: f64,
    /// Rows read from scans and shuffle blocks.
    pub rows_in: u64,
    /// Shuffle bytes read.
    pub bytes_in: u64,
    pub rows_out: u64,
    /// Shuffle bytes written.
    pub bytes_out: u64,
    /// Bytes read from another executor.
    pub bytes_remote: u64,
    pub spilled_bytes: u64,
}

/// A key holding many rows of a stage's output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HotKeyInfo {
    pub key: String,
    pub estimated_rows: u64,
    pub partition: usize,
}

/// One output partition of a stage, all its map tasks together.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct PartitionSize {
    pub rows: u64,
    pub bytes: u64,
}

/// Everything the store records: Spark's listener events, minispark's way.
/// One JSON object per line in an event log, tagged by `event`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event")]
pub enum StatusEvent {
    JobStart {
        job_id: String,
        time_ms: u64,
        /// The SQL (or the logical plan of a DataFrame).
        statement: String,
        /// The plan as EXPLAIN prints it: join strategies, then the stages.
        plan: String,
        stages: Vec<StageInfo>,
        /// The job's skew rule (which partitions count as skewed).
        skew_factor: f64,
        skew_threshold_bytes: u64,
    },
    /// A stage's readers were bound to its inputs: its tasks can run.
    StageSubmitted {
        job_id: String,
        stage: usize,
        time_ms: u64,
        tasks: usize,
        /// What adaptive execution decided for the stage, and why.
        adaptive: Option<String>,
        /// Bound again after an input lost outputs.
        rebound: bool,
    },
    TaskStart {
        job_id: String,
        stage: usize,
        partition: usize,
        attempt: u32,
        executor_id: String,
        time_ms: u64,
        speculative: bool,
    },
    TaskEnd {
        job_id: String,
        stage: usize,
        partition: usize,
        attempt: u32,
        executor_id: String,
        time_ms: u64,
        /// Set when the attempt succeeded.
        metrics: Option<TaskMetrics>,
        /// Why it did not.
        error: Option<String>,
    },
    /// Every task of a stage has its output.
    StageCompleted {
        job_id: String,
        stage: usize,
        time_ms: u64,
        partitions: Vec<PartitionSize>,
        hot_keys: Vec<HotKeyInfo>,
    },
    JobEnd {
        job_id: String,
        time_ms: u64,
        error: Option<String>,
        /// The job's counters as `EXPLAIN ANALYZE` prints them.
        counters: String,
        /// Map outputs computed again (its counter, for `/metrics`).
        #[serde(default)]
        recomputed_map_outputs: u64,
    },
    ExecutorAdded {
        executor_id: String,
        address: String,
        slots: usize,
        time_ms: u64,
    },
    ExecutorLost {
        executor_id: String,
        reason: String,
        time_ms: u64,
    },
}

impl StatusEvent {
    /// A task attempt that ended without output, and why (`time_ms` now).
    pub fn task_failed(
        job_id: &str,
        stage: usize,
        partition: usize,
        attempt: u32,
        executor_id: &str,
        error: String,
    ) -> Self {
        StatusEvent::TaskEnd {
            job_id: job_id.to_string(),
            stage,
            partition,
            attempt,
            executor_id: executor_id.to_string(),
            time_ms: now_ms(),
            metrics: None,
            error: Some(error),
        }
    }
}

impl StatusEvent {
    /// The job the event belongs to; `None` for cluster events.
    pub fn job_id(&self) -> Option<&str> {
        match self {
            Self::JobStart { job_id, .. }
            | Self::StageSubmitted { job_id, .. }
            | Self::TaskStart { job_id, .. }
            | Self::TaskEnd { job_id, .. }
            | Self::StageCompleted { job_id, .. }
            | Self::JobEnd { job_id, .. } => Some(job_id),
            Self::ExecutorAdded { .. } | Self::ExecutorLost { .. } => None,
        }
    }
}

/// A task attempt as the UI shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskRecord {
    pub partition: usize,
    pub attempt: u32,
    pub executor_id: String,
    pub start_ms: u64,
    pub end_ms: Option<u64>,
    /// "running", "success" or "failed".
    pub status: &'static str,
    pub speculative: bool,
    pub metrics: Option<TaskMetrics>,
    pub error: Option<String>,
}

/// A stage as the UI shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StageStatus {
    #[serde(flatten)]
    pub info: StageInfo,
    pub submitted_ms: Option<u64>,
    pub completed_ms: Option<u64>,
    /// Tasks after adaptive execution.
    pub num_tasks: usize,
    pub tasks_succeeded: usize,
    pub tasks_failed: usize,
    pub adaptive: Option<String>,
    pub rebinds: usize,
    pub tasks: Vec<TaskRecord>,
    /// Attempts not kept beyond [`MAX_TASKS_PER_STAGE`].
    pub tasks_dropped: usize,
    pub partitions: Vec<PartitionSize>,
    /// Output partitions the job's skew rule marks skewed.
    pub skewed_partitions: Vec<usize>,
    pub hot_keys: Vec<HotKeyInfo>,
}

impl StageStatus {
    /// "pending", "running", "complete", or "failed" (its job failed
    /// before it completed).
    pub fn state(&self, job_failed: bool) -> &'static str {
        match (self.completed_ms, self.submitted_ms) {
            (Some(_), _) => "complete",
            _ if job_failed => "failed",
            (None, Some(_)) => "running",
            (None, None) => "pending",
        }
    }

    /// Shuffle bytes its successful tasks wrote.
    pub fn bytes_out(&self) -> u64 {
        self.partitions.iter().map(|p| p.bytes).sum::<u64>().max(
            self.tasks
                .iter()
                .filter_map(|t| t.metrics)
                .map(|m| m.bytes_out)
                .sum(),
        )
    }
}

/// A job as the UI shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobStatus {
    pub job_id: String,
    pub statement: String,
    pub plan: String,
    pub submitted_ms: u64,
    pub completed_ms: Option<u64>,
    pub error: Option<String>,
    pub counters: Option<String>,
    pub skew_factor: f64,
    pub skew_threshold_bytes: u64,
    pub stages: Vec<StageStatus>,
}

impl JobStatus {
    /// "running", "succeeded" or "failed".
    pub fn state(&self) -> &'static str {
        match (&self.completed_ms, &self.error) {
            (None, _) => "running",
            (Some(_), None) => "succeeded",
            (Some(_), Some(_)) => "failed",
        }
    }

    pub fn stages_complete(&self) -> usize {
        self.stages
            .iter()
            .filter(|s| s.completed_ms.is_some())
            .count()
    }
}

/// How far a running stage is: what `submit`'s console progress bar shows
/// (Spark's `ConsoleProgressBar` reads the same from its status store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageProgress {
    pub job_id: String,
    pub stage: usize,
    /// Tasks of the stage (after adaptive execution).
    pub total: usize,
    /// Tasks with their output (at most `total`).
    pub done: usize,
    /// Attempts running now (speculative copies included).
    pub running: usize,
}

/// An executor as the store saw it come and go (live numbers such as the
/// last heartbeat come from the [`crate::cluster::Cluster`]).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExecutorRecord {
    pub executor_id: String,
    pub address: String,
    pub slots: usize,
    pub added_ms: u64,
    pub lost_ms: Option<u64>,
    pub lost_reason: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    jobs: VecDeque<JobStatus>,
    executors: BTreeMap<String, ExecutorRecord>,
    /// Event logs of running jobs.
    logs: BTreeMap<String, EventLog>,
}

/// The UI's model of the driver's jobs and executors (see the module docs).
#[derive(Debug)]
pub struct StatusStore {
    state: Mutex<State>,
    pub retained_jobs: usize,
    /// The driver's Prometheus metrics, counted from the recorded events.
    pub metrics: DriverMetrics,
}

impl Default for StatusStore {
    fn default() -> Self {
        Self::new(DEFAULT_RETAINED_JOBS)
    }
}

impl StatusStore {
    pub fn new(retained_jobs: usize) -> Self {
        Self {
            state: Mutex::default(),
            retained_jobs: retained_jobs.max(1),
            metrics: DriverMetrics::default(),
        }
    }

    /// Starts writing the events of `job_id` (its `JobStart` next) to `log`.
    /// The executors known now are written first, so the log stands alone.
    pub fn log_job(&self, job_id: &str, mut log: EventLog) {
        let mut state = self.lock();
        for e in state.executors.values() {
            log.write(&StatusEvent::ExecutorAdded {
                executor_id: e.executor_id.clone(),
                address: e.address.clone(),
                slots: e.slots,
                time_ms: e.added_ms,
            });
        }
        state.logs.insert(job_id.to_string(), log);
    }

    /// Applies one event, and logs it when its job has an event log.
    pub fn record(&self, event: StatusEvent) {
        self.metrics.count(&event);
        let mut state = self.lock();
        match event.job_id() {
            Some(job) => {
                if let Some(log) = state.logs.get_mut(job) {
                    log.write(&event);
                }
                if let StatusEvent::JobEnd { job_id, error, .. } = &event {
                    if let Some(log) = state.logs.remove(job_id) {
                        log.close();
                    }
                    if error.is_some()
                        && let Some(job) = state.jobs.iter().rev().find(|j| &j.job_id == job_id)
                    {
                        let failed = job
                            .stages
                            .iter()
                            .filter(|s| s.submitted_ms.is_some() && s.completed_ms.is_none())
                            .count();
                        self.metrics.count_failed_stages(failed as u64);
                    }
                }
            }
            None => {
                for log in state.logs.values_mut() {
                    log.write(&event);
                }
            }
        }
        apply(&mut state, event, self.retained_jobs);
    }

    /// Applies events read back from an event log (no logging).
    pub fn replay(&self, events: impl IntoIterator<Item = StatusEvent>) {
        let mut state = self.lock();
        for event in events {
            apply(&mut state, event, self.retained_jobs);
        }
    }

    /// Every retained job, newest first.
    pub fn jobs(&self) -> Vec<JobStatus> {
        self.lock().jobs.iter().rev().cloned().collect()
    }

    /// The jobs, newest first, without their stages' task lists (for lists).
    pub fn job_summaries(&self) -> Vec<JobStatus> {
        let state = self.lock();
        state
            .jobs
            .iter()
            .rev()
            .map(|j| JobStatus {
                stages: j
                    .stages
                    .iter()
                    .map(|s| StageStatus {
                        tasks: vec![],
                        ..s.clone()
                    })
                    .collect(),
                ..j.clone()
            })
            .collect()
    }

    pub fn job(&self, job_id: &str) -> Option<JobStatus> {
        self.lock()
            .jobs
            .iter()
            .find(|j| j.job_id == job_id)
            .cloned()
    }

    /// True while some retained job runs (pages then refresh themselves).
    pub fn any_running(&self) -> bool {
        self.lock().jobs.iter().any(|j| j.completed_ms.is_none())
    }

    /// The stages running now, of jobs still running, oldest job first and
    /// by stage id: submitted and not yet complete.
    pub fn active_stages(&self) -> Vec<StageProgress> {
        let state = self.lock();
        state
            .jobs
            .iter()
            .filter(|j| j.completed_ms.is_none())
            .flat_map(|j| {
                j.stages.iter().filter_map(|s| {
                    if s.submitted_ms.is_none() || s.completed_ms.is_some() {
                        return None;
                    }
                    let running = s.tasks.iter().filter(|t| t.end_ms.is_none()).count();
                    // Attempts of a partition that succeeded again (a
                    // speculative copy, a recomputed output) are not more
                    // than all the tasks.
                    Some(StageProgress {
                        job_id: j.job_id.clone(),
                        stage: s.info.id,
                        total: s.num_tasks,
                        done: s.tasks_succeeded.min(s.num_tasks),
                        running,
                    })
                })
            })
            .collect()
    }

    pub fn executors(&self) -> Vec<ExecutorRecord> {
        self.lock().executors.values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while the lock was held leaves a model that is
        // still readable: the UI keeps showing it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn apply(state: &mut State, event: StatusEvent, retained: usize) {
    let job = |state: &mut State, id: &str| -> Option<usize> {
        state.jobs.iter().rposition(|j| j.job_id == id)
    };
    match event {
        StatusEvent::JobStart {
            job_id,
            time_ms,
            statement,
            plan,
            stages,
            skew_factor,
            skew_threshold_bytes,
        } => {
            if job(state, &job_id).is_some() {
                return;
            }
            state.jobs.push_back(JobStatus {
                job_id,
                statement,
                plan,
                submitted_ms: time_ms,
                completed_ms: None,
                error: None,
                counters: None,
                skew_factor,
                skew_threshold_bytes,
                stages: stages
                    .into_iter()
                    .map(|info| StageStatus {
                        num_tasks: info.tasks,
                        info,
                        submitted_ms: None,
                        completed_ms: None,
                        tasks_succeeded: 0,
                        tasks_failed: 0,
                        adaptive: None,
                        rebinds: 0,
                        tasks: vec![],
                        tasks_dropped: 0,
                        partitions: vec![],
                        skewed_partitions: vec![],
                        hot_keys: vec![],
                    })
                    .collect(),
            });
            while state.jobs.len() > retained {
                state.jobs.pop_front();
            }
        }
        StatusEvent::StageSubmitted {
            job_id,
            stage,
            time_ms,
            tasks,
            adaptive,
            rebound,
        } => {
            if let Some(s) = stage_mut(state, &job_id, stage) {
                s.submitted_ms.get_or_insert(time_ms);
                s.num_tasks = tasks;
                if adaptive.is_some() {
                    s.adaptive = adaptive;
                }
                if rebound {
                    s.rebinds += 1;
                    s.completed_ms = None;
                }
            }
        }
        StatusEvent::TaskStart {
            job_id,
            stage,
            partition,
            attempt,
            executor_id,
            time_ms,
            speculative,
        } => {
            if let Some(s) = stage_mut(state, &job_id, stage) {
                if s.tasks.len() >= MAX_TASKS_PER_STAGE {
                    s.tasks_dropped += 1;
                    return;
                }
                s.tasks.push(TaskRecord {
                    partition,
                    attempt,
                    executor_id,
                    start_ms: time_ms,
                    end_ms: None,
                    status: "running",
                    speculative,
                    metrics: None,
                    error: None,
                });
            }
        }
        StatusEvent::TaskEnd {
            job_id,
            stage,
            partition,
            attempt,
            executor_id,
            time_ms,
            metrics,
            error,
        } => {
            if let Some(s) = stage_mut(state, &job_id, stage) {
                if metrics.is_some() {
                    s.tasks_succeeded += 1;
                } else {
                    s.tasks_failed += 1;
                }
                if let Some(t) = s.tasks.iter_mut().rev().find(|t| {
                    t.partition == partition && t.attempt == attempt && t.executor_id == executor_id
                }) {
                    t.end_ms = Some(time_ms);
                    t.status = if metrics.is_some() {
                        "success"
                    } else {
                        "failed"
                    };
                    t.metrics = metrics;
                    t.error = error;
                }
            }
        }
        StatusEvent::StageCompleted {
            job_id,
            stage,
            time_ms,
            partitions,
            hot_keys,
        } => {
            let Some(j) = job(state, &job_id) else {
                return;
            };
            let rule = SkewRule {
                factor: state.jobs[j].skew_factor,
                threshold_bytes: state.jobs[j].skew_threshold_bytes,
            };
            if let Some(s) = state.jobs[j].stages.get_mut(stage) {
                s.completed_ms = Some(time_ms);
                let sizes: Vec<_> = partitions
                    .iter()
                    .map(|p| minispark_planner::explain::PartitionSize {
                        rows: p.rows,
                        bytes: p.bytes,
                    })
                    .collect();
                s.skewed_partitions = if s.info.exchange == "hash shuffle" {
                    rule.skewed(&sizes).into_iter().map(|(p, _)| p).collect()
                } else {
                    vec![]
                };
                s.partitions = partitions;
                s.hot_keys = hot_keys;
            }
        }
        StatusEvent::JobEnd {
            job_id,
            time_ms,
            error,
            counters,
            ..
        } => {
            if let Some(j) = job(state, &job_id) {
                let job = &mut state.jobs[j];
                job.completed_ms = Some(time_ms);
                job.error = error;
                job.counters = Some(counters);
                for s in &mut job.stages {
                    for t in s.tasks.iter_mut().filter(|t| t.end_ms.is_none()) {
                        t.end_ms = Some(time_ms);
                        t.status = "failed";
                        t.error = Some("cancelled: the job ended".into());
                    }
                }
            }
        }
        StatusEvent::ExecutorAdded {
            executor_id,
            address,
            slots,
            time_ms,
        } => {
            state.executors.insert(
                executor_id.clone(),
                ExecutorRecord {
                    executor_id,
                    address,
                    slots,
                    added_ms: time_ms,
                    lost_ms: None,
                    lost_reason: None,
                },
            );
        }
        StatusEvent::ExecutorLost {
            executor_id,
            reason,
            time_ms,
        } => {
            if let Some(e) = state.executors.get_mut(&executor_id) {
                e.lost_ms = Some(time_ms);
                e.lost_reason = Some(reason);
            }
        }
    }
}

fn stage_mut<'a>(state: &'a mut State, job_id: &str, stage: usize) -> Option<&'a mut StageStatus> {
    state
        .jobs
        .iter_mut()
        .rev()
        .find(|j| j.job_id == job_id)
        .and_then(|j| j.stages.get_mut(stage))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(job: &str) -> StatusEvent {
        StatusEvent::JobStart {
            job_id: job.into(),
            time_ms: 1,
            statement: "SELECT 1".into(),
            plan: "Stage 0".into(),
            stages: vec![StageInfo {
                id: 0,
                tasks: 2,
                inputs: vec![],
                exchange: "hash shuffle".into(),
                partitions: 4,
                operators: vec!["ProjectionExec".into()],
            }],
            skew_factor: 2.0,
            skew_threshold_bytes: 0,
        }
    }

    #[test]
    fn keeps_the_last_jobs_and_their_tasks() {
        let store = StatusStore::new(2);
        for j in ["a", "b", "c"] {
            store.record(start(j));
        }
        let ids: Vec<_> = store.jobs().into_iter().map(|j| j.job_id).collect();
        assert_eq!(ids, ["c", "b"]);
        store.record(StatusEvent::TaskStart {
            job_id: "c".into(),
            stage: 0,
            partition: 1,
            attempt: 0,
            executor_id: "e".into(),
            time_ms: 5,
            speculative: false,
        });
        store.record(StatusEvent::TaskEnd {
            job_id: "c".into(),
            stage: 0,
            partition: 1,
            attempt: 0,
            executor_id: "e".into(),
            time_ms: 9,
            metrics: Some(TaskMetrics::default()),
            error: None,
        });
        store.record(StatusEvent::StageCompleted {
            job_id: "c".into(),
            stage: 0,
            time_ms: 10,
            partitions: [1, 1, 1, 90]
                .map(|b| PartitionSize { rows: b, bytes: b })
                .to_vec(),
            hot_keys: vec![],
        });
        // Events of unknown jobs and stages are ignored.
        store.record(StatusEvent::StageCompleted {
            job_id: "zz".into(),
            stage: 7,
            time_ms: 10,
            partitions: vec![],
            hot_keys: vec![],
        });
        let c = store.job("c").unwrap();
        assert_eq!(c.stages[0].tasks[0].status, "success");
        assert_eq!(c.stages[0].tasks[0].end_ms, Some(9));
        assert_eq!(c.stages[0].skewed_partitions, [3]);
        assert_eq!(c.state(), "running");
        store.record(StatusEvent::JobEnd {
            job_id: "c".into(),
            time_ms: 11,
            error: Some("boom".into()),
            counters: String::new(),
            recomputed_map_outputs: 0,
        });
        assert_eq!(store.job("c").unwrap().state(), "failed");
        assert!(!store.any_running() || store.job("b").unwrap().completed_ms.is_none());
    }

    #[test]
    fn events_round_trip_as_json_lines() {
        let e = start("j");
        let line = serde_json::to_string(&e).unwrap();
        assert!(line.starts_with(r#"{"event":"JobStart""#), "{line}");
        assert_eq!(serde_json::from_str::<StatusEvent>(&line).unwrap(), e);
    }
}
