//! The map-output tracker: where every finished map task's blocks are.
//!
//! In Spark, the `MapOutputTracker` is the driver's registry of shuffle
//! output. Each map task of a shuffle stage writes its output to its own
//! executor's disk, one block per reduce partition, and reports back a
//! `MapStatus`: which executor holds the blocks and how big each one is.
//! The tracker keeps one status per map task. With it the driver can:
//!
//! * tell when a stage is **complete** (every map task has an output), so
//!   the stages reading it may start;
//! * tell each reduce task **where its blocks are** (the reader of a stage
//!   is bound to the blocks of its input stages from here);
//! * size partitions from the reported bytes (adaptive execution, EXPLAIN
//!   ANALYZE's histograms);
//! * **forget the outputs of a lost executor**: the files died with it, so
//!   those map tasks must run again before anyone can read them (Spark's
//!   `removeOutputsOnExecutor`, after an executor loss);
//! * **forget one output whose block is gone** (a reader's `FetchFailed`:
//!   its executor answered that it does not have it), only when it is still
//!   the output that executor committed for that attempt (Spark's
//!   `unregisterMapOutput`).
//!
//! ```text
//!   stage 0, map task m ──MapOutput{executor, blocks}──▶ tracker[0][m]
//!   executor lost       ──────────────────────────────▶ tracker[s][m] = None
//!                                                        for its outputs
//!   stage 1 binding     ◀─── outputs of stage 0 ──────── tracker[0][..]
//! ```
//!
//! minispark keys outputs by stage (a stage writes exactly one exchange),
//! where Spark keys them by shuffle id. It lives for one job, inside the
//! scheduler: every job has its own stages and files.

use std::collections::HashSet;

use minispark_planner::exchange::MapOutput;
use minispark_planner::explain::PartitionSize;

use crate::ids::StageId;

/// The outputs of every map task of every stage of one job.
#[derive(Debug, Default)]
pub struct MapOutputTracker {
    /// Per stage, per map task: its output, once it has finished.
    stages: Vec<Vec<Option<MapOutput>>>,
}

impl MapOutputTracker {
    /// A tracker for stages with these numbers of map tasks, no output yet.
    pub fn new(tasks_per_stage: impl IntoIterator<Item = usize>) -> Self {
        Self {
            stages: tasks_per_stage.into_iter().map(|n| vec![None; n]).collect(),
        }
    }

    /// How many map tasks `stage` has.
    pub fn num_tasks(&self, stage: StageId) -> usize {
        self.stages[stage.0].len()
    }

    /// Gives `stage` a new number of map tasks, before any of them ran
    /// (adaptive execution reshaped the stage).
    pub fn reshape(&mut self, stage: StageId, num_tasks: usize) {
        self.stages[stage.0] = vec![None; num_tasks];
    }

    /// Records what map task `map` of `stage` wrote.
    pub fn register(&mut self, stage: StageId, map: usize, output: MapOutput) {
        self.stages[stage.0][map] = Some(output);
    }

    /// Whether map task `map` of `stage` has its output.
    pub fn has_output(&self, stage: StageId, map: usize) -> bool {
        self.stages[stage.0][map].is_some()
    }

    /// Whether every map task of `stage` has its output: the stages that
    /// read it can be bound.
    pub fn is_complete(&self, stage: StageId) -> bool {
        self.stages[stage.0].iter().all(Option::is_some)
    }

    /// The outputs `stage` has, in map order.
    pub fn outputs(&self, stage: StageId) -> impl Iterator<Item = &MapOutput> {
        self.stages[stage.0].iter().flatten()
    }

    /// Forgets every output held by an executor not in `live`: its files
    /// are gone. Returns the stage of each output forgotten.
    pub fn remove_outputs_on_lost_executors(&mut self, live: &HashSet<String>) -> Vec<StageId> {
        let mut lost = vec![];
        for (stage, outputs) in self.stages.iter_mut().enumerate() {
            for output in outputs.iter_mut() {
                if output
                    .as_ref()
                    .is_some_and(|o| !live.contains(&o.executor_id))
                {
                    *output = None;
                    lost.push(StageId(stage));
                }
            }
        }
        lost
    }

    /// Forgets map task `map`'s output of `stage` when it is still the
    /// one `executor_id` committed as `attempt`: a reader was told its
    /// block is gone. Returns whether it was forgotten.
    pub fn remove_output(
        &mut self,
        stage: StageId,
        map: usize,
        executor_id: &str,
        attempt: u32,
    ) -> bool {
        let Some(slot) = self.stages.get_mut(stage.0).and_then(|s| s.get_mut(map)) else {
            return false;
        };
        let matches = slot
            .as_ref()
            .is_some_and(|o| o.executor_id == executor_id && o.attempt == attempt);
        if matches {
            *slot = None;
        }
        matches
    }

    /// Rows and bytes of each of `stage`'s `num_partitions` output
    /// partitions, summed over its map tasks.
    pub fn partition_sizes(&self, stage: StageId, num_partitions: usize) -> Vec<PartitionSize> {
        let mut sizes = vec![PartitionSize::default(); num_partitions];
        for block in self.outputs(stage).flat_map(|o| &o.blocks) {
            if let Some(size) = sizes.get_mut(block.reduce_partition) {
                size.rows += block.rows;
                size.bytes += block.bytes;
            }
        }
        sizes
    }
}

#[cfg(test)]
mod tests {
    use minispark_planner::exchange::BlockStats;

    use super::*;

    fn output(executor: &str, map: usize, rows: u64) -> MapOutput {
        MapOutput {
            executor_id: executor.into(),
            address: format!("{executor}:1"),
            map_partition: map,
            attempt: 0,
            blocks: vec![
                BlockStats {
                    reduce_partition: 0,
                    rows,
                    bytes: rows * 10,
                },
                BlockStats {
                    reduce_partition: 1,
                    rows: 1,
                    bytes: 10,
                },
            ],
            hot_keys: vec![],
        }
    }

    #[test]
    fn a_stage_is_complete_until_an_executor_holding_its_output_is_lost() {
        let (s0, s1) = (StageId(0), StageId(1));
        let mut tracker = MapOutputTracker::new([2, 1]);
        assert!(!tracker.is_complete(s0));
        tracker.register(s0, 0, output("a", 0, 5));
        assert!(tracker.has_output(s0, 0) && !tracker.is_complete(s0));
        tracker.register(s0, 1, output("b", 1, 7));
        tracker.register(s1, 0, output("b", 0, 1));
        assert!(tracker.is_complete(s0) && tracker.is_complete(s1));
        let sizes = tracker.partition_sizes(s0, 2);
        assert_eq!((sizes[0].rows, sizes[0].bytes), (12, 120));
        assert_eq!((sizes[1].rows, sizes[1].bytes), (2, 20));

        // Executor b is lost: its outputs of both stages are forgotten.
        let live: HashSet<String> = ["a".to_string()].into();
        assert_eq!(
            tracker.remove_outputs_on_lost_executors(&live),
            vec![s0, s1]
        );
        assert!(!tracker.is_complete(s0) && !tracker.is_complete(s1));
        assert_eq!(tracker.outputs(s0).count(), 1);
        assert!(tracker.remove_outputs_on_lost_executors(&live).is_empty());

        // A block reported gone: only the output it names is forgotten.
        tracker.register(s0, 1, output("a", 1, 7));
        assert!(!tracker.remove_output(s0, 1, "a", 1), "another attempt");
        assert!(!tracker.remove_output(s0, 1, "b", 0), "another executor");
        assert!(!tracker.remove_output(s0, 9, "a", 0), "no such map task");
        assert!(tracker.remove_output(s0, 1, "a", 0));
        assert!(!tracker.has_output(s0, 1) && tracker.has_output(s0, 0));

        tracker.reshape(s1, 3);
        assert_eq!(tracker.num_tasks(s1), 3);
    }
}
