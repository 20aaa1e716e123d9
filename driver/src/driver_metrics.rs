//! The driver's Prometheus metrics, served at `/metrics` on the UI's port:
//! jobs, stages and tasks started, finished and failed, a task duration
//! histogram, shuffle bytes written, read and fetched remotely, spill,
//! executors alive and lost, fetch failures and recomputed map outputs.
//!
//! They are counted from the same [`StatusEvent`]s the UI's store records
//! (atomic counters; the histogram takes its own short lock), so they agree
//! with the UI and the API. Encoding is the OpenMetrics text format of the
//! `prometheus-client` crate.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::status_store::StatusEvent;

/// Every metric of the driver, and the registry that encodes them.
#[derive(Debug)]
pub struct DriverMetrics {
    registry: Registry,
    jobs_started: Counter,
    jobs_succeeded: Counter,
    jobs_failed: Counter,
    stages_started: Counter,
    stages_completed: Counter,
    tasks_started: Counter,
    tasks_succeeded: Counter,
    tasks_failed: Counter,
    task_duration: Histogram,
    shuffle_written: Counter,
    shuffle_read: Counter,
    shuffle_fetched_remote: Counter,
    spilled: Counter,
    executors_alive: Gauge,
    executors_lost: Counter,
    fetch_failures: Counter,
    recomputed_map_outputs: Counter,
}

impl Default for DriverMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("minispark");
        let m = Self {
            jobs_started: Counter::default(),
            jobs_succeeded: Counter::default(),
            jobs_failed: Counter::default(),
            stages_started: Counter::default(),
            stages_completed: Counter::default(),
            tasks_started: Counter::default(),
            tasks_succeeded: Counter::default(),
            tasks_failed: Counter::default(),
            // 1 ms to about 9 hours, doubling.
            task_duration: Histogram::new(exponential_buckets(0.001, 2.0, 25)),
            shuffle_written: Counter::default(),
            shuffle_read: Counter::default(),
            shuffle_fetched_remote: Counter::default(),
            spilled: Counter::default(),
            executors_alive: Gauge::default(),
            executors_lost: Counter::default(),
            fetch_failures: Counter::default(),
            recomputed_map_outputs: Counter::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("jobs_started", "Jobs started", m.jobs_started.clone());
        r.register(
            "jobs_succeeded",
            "Jobs that succeeded",
            m.jobs_succeeded.clone(),
        );
        r.register("jobs_failed", "Jobs that failed", m.jobs_failed.clone());
        r.register(
            "stages_started",
            "Stages whose tasks were launched (re-bindings not counted)",
            m.stages_started.clone(),
        );
        r.register(
            "stages_completed",
            "Stages all of whose tasks have their output",
            m.stages_completed.clone(),
        );
        r.register(
            "tasks_started",
            "Task attempts launched",
            m.tasks_started.clone(),
        );
        r.register(
            "tasks_succeeded",
            "Task attempts that succeeded",
            m.tasks_succeeded.clone(),
        );
        r.register(
            "tasks_failed",
            "Task attempts that failed, were cancelled or lost",
            m.tasks_failed.clone(),
        );
        r.register(
            "task_duration_seconds",
            "Run time of successful task attempts on their executors",
            m.task_duration.clone(),
        );
        r.register(
            "shuffle_written_bytes",
            "Shuffle bytes successful tasks wrote",
            m.shuffle_written.clone(),
        );
        r.register(
            "shuffle_read_bytes",
            "Shuffle bytes successful tasks read",
            m.shuffle_read.clone(),
        );
        r.register(
            "shuffle_fetched_remote_bytes",
            "Shuffle bytes successful tasks read from another executor",
            m.shuffle_fetched_remote.clone(),
        );
        r.register(
            "spilled_bytes",
            "Bytes successful tasks spilled to disk",
            m.spilled.clone(),
        );
        r.register(
            "executors_alive",
            "Executors registered and alive",
            m.executors_alive.clone(),
        );
        r.register(
            "executors_lost",
            "Executors lost (killed, silent, unreachable)",
            m.executors_lost.clone(),
        );
        r.register(
            "fetch_failures",
            "Task attempts that could not fetch a shuffle block",
            m.fetch_failures.clone(),
        );
        r.register(
            "recomputed_map_outputs",
            "Map outputs computed again after their executor or block was lost",
            m.recomputed_map_outputs.clone(),
        );
        Self { registry, ..m }
    }
}

impl DriverMetrics {
    /// Counts one event.
    pub fn count(&self, event: &StatusEvent) {
        match event {
            StatusEvent::JobStart { .. } => {
                self.jobs_started.inc();
            }
            StatusEvent::JobEnd {
                error,
                recomputed_map_outputs,
                ..
            } => {
                if error.is_some() {
                    self.jobs_failed.inc();
                } else {
                    self.jobs_succeeded.inc();
                }
                self.recomputed_map_outputs.inc_by(*recomputed_map_outputs);
            }
            StatusEvent::StageSubmitted { rebound: false, .. } => {
                self.stages_started.inc();
            }
            StatusEvent::StageSubmitted { rebound: true, .. } => {}
            StatusEvent::StageCompleted { .. } => {
                self.stages_completed.inc();
            }
            StatusEvent::TaskStart { .. } => {
                self.tasks_started.inc();
            }
            StatusEvent::TaskEnd { metrics, error, .. } => match metrics {
                Some(m) => {
                    self.tasks_succeeded.inc();
                    self.task_duration.observe(m.duration_ms / 1000.0);
                    self.shuffle_written.inc_by(m.bytes_out);
                    self.shuffle_read.inc_by(m.bytes_in);
                    self.shuffle_fetched_remote.inc_by(m.bytes_remote);
                    self.spilled.inc_by(m.spilled_bytes);
                }
                None => {
                    self.tasks_failed.inc();
                    if error
                        .as_deref()
                        .is_some_and(|e| e.starts_with("fetch failed"))
                    {
                        self.fetch_failures.inc();
                    }
                }
            },
            StatusEvent::ExecutorAdded { .. } => {}
            StatusEvent::ExecutorLost { .. } => {
                self.executors_lost.inc();
            }
        }
    }

    /// The OpenMetrics text exposition, with `executors_alive` as the
    /// cluster counts them now.
    pub fn encode(&self, executors_alive: usize) -> String {
        self.executors_alive.set(executors_alive as i64);
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            return format!("# error encoding the metrics: {e}\n");
        }
        out
    }
}
