//! What happened while a job ran: retries, lost executors, recomputed
//! shuffle output, adaptive and salting decisions, speculative copies and
//! task timeouts.
//!
//! The answer of a job does not say whether an executor died under it or
//! whether a skewed partition was split: these counters do. The scheduler
//! counts where things happen ([`crate::scheduler`]); salting is counted
//! from the planning of the job ([`crate::job`]). A user reads them with
//! `JobSession::last_job_counters`, in the last line of `EXPLAIN ANALYZE`
//! (`job: ...`), or from the facade (`DataFrame::collect_with_counters`,
//! `Session::last_job_counters`); a remote client gets them in the
//! `StatementEnd` event.

use std::fmt;

/// Counters of one job (one query; a script has one job per query).
///
/// Spark shows most of these in its UI and `SparkListener` events; the
/// equivalent is named on each field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounters {
    /// Task launches, retries included. Spark: the task attempts of the
    /// job's stages (`TaskInfo.attemptNumber` counts them per task).
    pub task_attempts: u64,
    /// Attempts that did not produce their output: the task failed, could
    /// not fetch its input, or its executor was lost while it ran. Spark:
    /// failed tasks (`numFailedTasks` of the stages), `ExecutorLostFailure`
    /// and `FetchFailed` included.
    pub failed_attempts: u64,
    /// Map outputs that had been written and were computed again because
    /// their executor was lost, or answered that a block of theirs was gone. Spark: the partitions of a resubmitted
    /// `ShuffleMapStage` after a `FetchFailed` or an executor loss.
    pub recomputed_map_outputs: u64,
    /// Executors that went away while the job ran (killed, silent past the
    /// heartbeat timeout, or found unreachable). Spark: `SparkListenerExecutorRemoved`.
    pub executors_lost: u64,
    /// Times a stage's readers were bound to its inputs' blocks again after
    /// an input lost outputs (the stage's first binding not counted). Spark:
    /// a stage attempt after the first (`StageInfo.attemptNumber > 0`).
    pub stages_rebound: u64,
    /// Stages adaptive execution ran differently from the static plan:
    /// partitions coalesced, skewed partitions split, or a join switched to
    /// broadcast. Spark: AQE's re-optimized query stages
    /// (`CoalesceShufflePartitions`, `OptimizeSkewedJoin`, the
    /// broadcast-join rewrite).
    pub adaptive_decisions: u64,
    /// Skewed partitions adaptive execution split into several tasks.
    /// Spark: `OptimizeSkewedJoin`'s `numSkewedPartitions` metric.
    pub skew_splits: u64,
    /// Shuffled joins adaptive execution switched to a broadcast join from
    /// the measured size of a side. Spark: AQE's
    /// `DynamicJoinSelection`/broadcast rewrite.
    pub broadcast_switches: u64,
    /// Stages whose output was broadcast to every task of the next stage
    /// (the small side of a broadcast join). Spark: a `BroadcastExchange`.
    pub broadcast_stages: u64,
    /// Joins and GROUP BYs whose hot keys were salted. No Spark equivalent
    /// (Spark users salt by hand).
    pub salted_sites: u64,
    /// Second attempts launched for slow tasks by speculative execution
    /// (`minispark.speculation`, see [`crate::speculation`]); also counted
    /// in `task_attempts`. A cancelled loser is not a failed attempt.
    /// Spark: speculative task attempts (`TaskInfo.speculative`).
    pub speculative_attempts: u64,
    /// Attempts cancelled because they had not finished within
    /// `minispark.task.timeout` (see [`crate::task_timeout`]); also counted
    /// in `failed_attempts`. No Spark equivalent.
    pub timed_out_attempts: u64,
    /// Bytes the job's tasks spilled to disk for lack of memory (sorts,
    /// aggregations, joins under the executors' `--memory`). Spark: the
    /// stages' "Spill (Disk)".
    pub spilled_bytes: u64,
    /// Spill files those were written to.
    pub spill_count: u64,
    /// Times an executor read the build side of a broadcast join: once per
    /// executor per broadcast stage, shared by the executor's tasks (see
    /// `minispark_executor::broadcast_cache`). Spark: a broadcast variable
    /// fetched once per executor (`TorrentBroadcast`).
    pub broadcast_fetches: u64,
    /// Bytes of other executors' shuffle blocks fetched to a file, not
    /// memory, because they were larger than
    /// `minispark.network.maxRemoteBlockSizeFetchToMem` or the task's
    /// memory could not hold them. Spark: "Remote Bytes Read To Disk".
    pub remote_bytes_read_to_disk: u64,
    /// Hash tables of broadcast joins built by executors: once per executor
    /// per broadcast join, probed by all of its tasks of the stage (see
    /// `minispark_executor::broadcast_hash_table`). Spark: the broadcast
    /// `HashedRelation`, built once.
    pub broadcast_hash_tables_built: u64,
    /// Runtime filters kept: map stages that shuffled only the rows whose
    /// join keys the other side of their join holds (see
    /// `minispark_planner::runtime_filter`). Spark: the runtime filters
    /// `InjectRuntimeFilter` added (semi-join reduction).
    pub runtime_filters: u64,
}

impl JobCounters {
    /// True when something went wrong and was recovered from.
    pub fn had_failures(&self) -> bool {
        self.failed_attempts > 0 || self.executors_lost > 0 || self.recomputed_map_outputs > 0
    }

    /// The counters as the wire message of a remote client.
    pub fn to_proto(&self) -> minispark_proto::JobCounters {
        minispark_proto::JobCounters {
            task_attempts: self.task_attempts,
            failed_attempts: self.failed_attempts,
            recomputed_map_outputs: self.recomputed_map_outputs,
            executors_lost: self.executors_lost,
            stages_rebound: self.stages_rebound,
            adaptive_decisions: self.adaptive_decisions,
            skew_splits: self.skew_splits,
            broadcast_switches: self.broadcast_switches,
            broadcast_stages: self.broadcast_stages,
            salted_sites: self.salted_sites,
            speculative_attempts: self.speculative_attempts,
            timed_out_attempts: self.timed_out_attempts,
            spilled_bytes: self.spilled_bytes,
            spill_count: self.spill_count,
            broadcast_fetches: self.broadcast_fetches,
            remote_bytes_read_to_disk: self.remote_bytes_read_to_disk,
            broadcast_hash_tables_built: self.broadcast_hash_tables_built,
            runtime_filters: self.runtime_filters,
        }
    }

    /// The counters a remote driver sent.
    pub fn from_proto(p: &minispark_proto::JobCounters) -> Self {
        Self {
            task_attempts: p.task_attempts,
            failed_attempts: p.failed_attempts,
            recomputed_map_outputs: p.recomputed_map_outputs,
            executors_lost: p.executors_lost,
            stages_rebound: p.stages_rebound,
            adaptive_decisions: p.adaptive_decisions,
            skew_splits: p.skew_splits,
            broadcast_switches: p.broadcast_switches,
            broadcast_stages: p.broadcast_stages,
            salted_sites: p.salted_sites,
            speculative_attempts: p.speculative_attempts,
            timed_out_attempts: p.timed_out_attempts,
            spilled_bytes: p.spilled_bytes,
            spill_count: p.spill_count,
            broadcast_fetches: p.broadcast_fetches,
            remote_bytes_read_to_disk: p.remote_bytes_read_to_disk,
            broadcast_hash_tables_built: p.broadcast_hash_tables_built,
            runtime_filters: p.runtime_filters,
        }
    }
}

/// One line, as `EXPLAIN ANALYZE` ends: `job: 12 task attempts, 0 failed, ...`.
impl fmt::Display for JobCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "job: {} task attempts, {} failed, {} map outputs recomputed, {} executors lost, \
             {} stages re-bound, {} adaptive decisions ({} skew splits, {} broadcast switches), \
             {} broadcast stages, {} salted sites, {} speculative attempts, {} timed out, \
             {} bytes spilled in {} files, {} broadcast fetches, \
             {} remote bytes read to disk, {} broadcast hash tables built, {} runtime filters",
            self.task_attempts,
            self.failed_attempts,
            self.recomputed_map_outputs,
            self.executors_lost,
            self.stages_rebound,
            self.adaptive_decisions,
            self.skew_splits,
            self.broadcast_switches,
            self.broadcast_stages,
            self.salted_sites,
            self.speculative_attempts,
            self.timed_out_attempts,
            self.spilled_bytes,
            self.spill_count,
            self.broadcast_fetches,
            self.remote_bytes_read_to_disk,
            self.broadcast_hash_tables_built,
            self.runtime_filters
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_wire_message() {
        let c = JobCounters {
            task_attempts: 1,
            failed_attempts: 2,
            recomputed_map_outputs: 3,
            executors_lost: 4,
            stages_rebound: 5,
            adaptive_decisions: 6,
            skew_splits: 7,
            broadcast_switches: 8,
            broadcast_stages: 9,
            salted_sites: 10,
            speculative_attempts: 11,
            timed_out_attempts: 12,
            spilled_bytes: 13,
            spill_count: 14,
            broadcast_fetches: 15,
            remote_bytes_read_to_disk: 16,
            broadcast_hash_tables_built: 17,
            runtime_filters: 18,
        };
        assert_eq!(JobCounters::from_proto(&c.to_proto()), c);
        assert!(c.had_failures());
        assert!(!JobCounters::default().had_failures());
        assert!(
            c.to_string()
                .starts_with("job: 1 task attempts, 2 failed, 3 map outputs")
        );
        assert!(c.to_string().ends_with(
            "10 salted sites, 11 speculative attempts, 12 timed out, 13 bytes spilled in 14 files, \
             15 broadcast fetches, 16 remote bytes read to disk, 17 broadcast hash tables built, \
             18 runtime filters"
        ));
    }
}
