//! The driver's view of the cluster: which executors are alive, and how many
//! free task slots each has.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::common::DataFusionError;
use minispark_proto::executor_client::ExecutorClient;
use minispark_proto::{AuthChannel, ExecutorInfo, Security};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::registration::{LiveExecutor, check_registration};
use crate::status_store::{StatusEvent, StatusStore, now_ms};

/// A live executor.
#[derive(Debug, Clone)]
pub struct ExecutorHandle {
    pub id: String,
    pub address: String,
    pub client: ExecutorClient<AuthChannel>,
}

/// A live executor as the UI shows it ([`Cluster::live_executors`]).
#[derive(Debug, Clone)]
pub struct LiveExecutorView {
    pub id: String,
    pub address: String,
    pub slots: usize,
    pub free: usize,
    pub running_tasks: usize,
    /// Bytes its tasks share (`--memory`); 0 when unbounded.
    pub memory: u64,
    pub since_heartbeat: Duration,
}

#[derive(Debug)]
struct Entry {
    handle: ExecutorHandle,
    slots: usize,
    free: usize,
    last_seen: Instant,
    /// The registering process's token (see [`crate::registration`]).
    instance: String,
    /// Tasks running on the executor, as of its last heartbeat.
    running_tasks: usize,
    /// Bytes its tasks share (`--memory`); 0 when unbounded.
    memory: u64,
}

/// Registry of executors and their slots, shared by all running jobs.
#[derive(Debug)]
pub struct Cluster {
    executors: Mutex<BTreeMap<String, Entry>>,
    /// Woken whenever an executor registers, is lost, or frees a slot.
    pub changed: Notify,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    /// The cluster secret and TLS settings of the driver's connections to
    /// executors.
    pub security: Security,
    /// What the web UI shows: jobs, stages, tasks, executors come and gone.
    pub status: Arc<StatusStore>,
}

impl Cluster {
    pub fn new(
        heartbeat_interval: Duration,
        heartbeat_timeout: Duration,
        security: Security,
    ) -> Self {
        Self {
            executors: Mutex::default(),
            changed: Notify::new(),
            heartbeat_interval,
            heartbeat_timeout,
            security,
            status: Arc::default(),
        }
    }

    /// Adds (or re-adds) an executor, once [`check_registration`] accepts it.
    pub fn register(&self, info: &ExecutorInfo) -> datafusion::common::Result<()> {
        let mut executors = self.executors.lock().expect("cluster lock");
        let live = executors.get(&info.id).map(|e| LiveExecutor {
            address: &e.handle.address,
            instance: &e.instance,
        });
        let slots = check_registration(info, live).map_err(DataFusionError::Configuration)?;
        let client = minispark_proto::executor_client(&info.address, &self.security)?;
        executors.insert(
            info.id.clone(),
            Entry {
                handle: ExecutorHandle {
                    id: info.id.clone(),
                    address: info.address.clone(),
                    client,
                },
                slots,
                free: slots,
                last_seen: Instant::now(),
                instance: info.instance.clone(),
                running_tasks: 0,
                memory: info.memory_bytes,
            },
        );
        drop(executors);
        self.status.record(StatusEvent::ExecutorAdded {
            executor_id: info.id.clone(),
            address: info.address.clone(),
            slots,
            time_ms: now_ms(),
        });
        info!(
            executor_id = info.id,
            address = info.address,
            slots,
            "executor registered"
        );
        self.changed.notify_waiters();
        Ok(())
    }

    /// Records a heartbeat; false when the executor is unknown.
    pub fn heartbeat(&self, executor_id: &str, running_tasks: usize) -> bool {
        let mut executors = self.executors.lock().expect("cluster lock");
        match executors.get_mut(executor_id) {
            Some(e) => {
                e.last_seen = Instant::now();
                e.running_tasks = running_tasks;
                true
            }
            None => false,
        }
    }

    /// Forgets an executor: its tasks and shuffle output are gone.
    pub fn mark_lost(&self, executor_id: &str, reason: &str) {
        let removed = self
            .executors
            .lock()
            .expect("cluster lock")
            .remove(executor_id)
            .is_some();
        if removed {
            warn!(executor_id, reason, "executor lost");
            self.status.record(StatusEvent::ExecutorLost {
                executor_id: executor_id.to_string(),
                reason: reason.to_string(),
                time_ms: now_ms(),
            });
            self.changed.notify_waiters();
        }
    }

    /// Declares lost every executor silent for longer than the timeout.
    pub fn expire_silent(&self) {
        let now = Instant::now();
        let silent: Vec<String> = self
            .executors
            .lock()
            .expect("cluster lock")
            .values()
            .filter(|e| now.duration_since(e.last_seen) > self.heartbeat_timeout)
            .map(|e| e.handle.id.clone())
            .collect();
        for id in silent {
            self.mark_lost(&id, "no heartbeat within the timeout");
        }
    }

    pub fn live_ids(&self) -> HashSet<String> {
        self.executors
            .lock()
            .expect("cluster lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Each live executor's slots, free slots, running tasks (as of its last
    /// heartbeat), memory and time since it was last heard from: the
    /// executors page.
    pub fn live_executors(&self) -> Vec<LiveExecutorView> {
        self.executors
            .lock()
            .expect("cluster lock")
            .values()
            .map(|e| LiveExecutorView {
                id: e.handle.id.clone(),
                address: e.handle.address.clone(),
                slots: e.slots,
                free: e.free,
                running_tasks: e.running_tasks,
                memory: e.memory,
                since_heartbeat: e.last_seen.elapsed(),
            })
            .collect()
    }

    pub fn executors(&self) -> Vec<ExecutorHandle> {
        self.executors
            .lock()
            .expect("cluster lock")
            .values()
            .map(|e| e.handle.clone())
            .collect()
    }

    /// Number of live executors and their total slots.
    pub fn size(&self) -> (usize, usize) {
        let executors = self.executors.lock().expect("cluster lock");
        (executors.len(), executors.values().map(|e| e.slots).sum())
    }

    /// A task's share of executor memory: the smallest memory / slots of
    /// the executors that have a memory limit; `None` when none has.
    pub fn task_memory(&self) -> Option<u64> {
        self.executors
            .lock()
            .expect("cluster lock")
            .values()
            .filter(|e| e.memory > 0)
            .map(|e| e.memory / e.slots.max(1) as u64)
            .min()
    }

    /// Free slots in the whole cluster.
    pub fn free_slots(&self) -> usize {
        self.executors
            .lock()
            .expect("cluster lock")
            .values()
            .map(|e| e.free)
            .sum()
    }

    /// Tasks running on all executors, as of their last heartbeats.
    pub fn running_tasks(&self) -> usize {
        self.executors
            .lock()
            .expect("cluster lock")
            .values()
            .map(|e| e.running_tasks)
            .sum()
    }

    /// Takes a free slot: on `preferred` if it has one, else on the executor
    /// with the most free slots, never on an `excluded` one unless it is the
    /// only executor left.
    pub fn try_acquire(
        &self,
        preferred: Option<&str>,
        excluded: &HashSet<String>,
    ) -> Option<ExecutorHandle> {
        let mut executors = self.executors.lock().expect("cluster lock");
        let all_excluded = executors.keys().all(|id| excluded.contains(id));
        let eligible = |e: &Entry| e.free > 0 && (all_excluded || !excluded.contains(&e.handle.id));
        let chosen = match preferred.and_then(|p| executors.get(p)) {
            Some(e) if eligible(e) => Some(e.handle.id.clone()),
            _ => executors
                .values()
                .filter(|e| eligible(e))
                .max_by_key(|e| e.free)
                .map(|e| e.handle.id.clone()),
        }?;
        let entry = executors.get_mut(&chosen)?;
        entry.free -= 1;
        Some(entry.handle.clone())
    }

    /// Gives back a slot taken with [`Self::try_acquire`].
    pub fn release(&self, executor_id: &str) {
        if let Some(e) = self
            .executors
            .lock()
            .expect("cluster lock")
            .get_mut(executor_id)
        {
            e.free = (e.free + 1).min(e.slots);
        }
        self.changed.notify_waiters();
    }

    /// Waits until `n` executors are registered, or the timeout passes.
    pub async fn wait_for_executors(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if self.size().0 >= n {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), notified).await;
        }
    }
}
