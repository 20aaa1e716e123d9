//! Adaptive query execution (AQE): choosing a stage's tasks from its
//! inputs' real sizes.
//!
//! Spark plans a query once with estimates, then optimizes it again while it
//! runs: each time a shuffle has been written, the size of every partition
//! is known, and the stages reading it are re-planned with real numbers.
//! minispark does the same, stage by stage: a stage that reads hash
//! shuffles starts once its input stages are done, when the bytes of every
//! (map task, reduce partition) block are known, and its tasks need not be
//! one per reduce partition.
//!
//! ```text
//!  reduce partitions   p0 ▏  p1 ▏  p2 ██████████████  p3 ▎  p4 ▏
//!  tasks               └─ task 0 ─┘  task 1 │ task 2   └ task 3 ┘
//!                      coalesced      p2 split by map      coalesced
//!                      (small)        ranges (skewed)
//! ```
//!
//! One file per Spark rule:
//!
//! | file | Spark's rule | what it does to a stage |
//! |---|---|---|
//! | [`switch_to_broadcast`] | `DynamicJoinSelection`, and re-planning the join as a broadcast hash join | a shuffled join whose side *measured* below `minispark.sql.autoBroadcastJoinThreshold` runs as a broadcast join |
//! | [`switch_to_sort_merge`] | none: Spark shuffles joins as sort-merge joins from the start | a shuffled hash join whose build partition *measured* above a task's share of executor memory runs as a sort-merge join, which spills |
//! | [`local_shuffle_read`] | `OptimizeShuffleWithLocalRead` (the "local shuffle reader") | the tasks of a switched join read whole map outputs of the other side, each where it was written |
//! | [`skew_join`] | `OptimizeSkewedJoin` | a skewed partition of a join side is read by several tasks, each a range of its map outputs, each with the other side's whole partition |
//! | [`coalesce`] | `CoalesceShufflePartitions` | neighbouring small partitions are read by one task, up to `minispark.adaptive.advisoryPartitionSizeInBytes` |
//! | [`rebalance`] | `OptimizeSkewInRebalancePartitions` | a `REBALANCE` shuffle's partitions over the advisory size are split by map ranges (no skew factor needed), small ones coalesced |
//!
//! What asked for a shuffle limits what may be done to the stage reading
//! it: a partition count the user gave (`REPARTITION(8, k)`) is kept, and
//! only a `REBALANCE` is split without a join
//! ([`crate::repartition::shuffle_origin`]).
//!
//! When each runs (the scheduler calls this module when a stage's inputs
//! are written, with `minispark.adaptive.enabled` on):
//!
//! ```text
//!  input stages done: the bytes of every (map task, reduce partition) block
//!     │
//!     ▼
//!  adaptive_readers: may the stage adapt at all? which readers may be split?
//!     │  no ─▶ one task per reduce partition, as planned
//!     ▼  yes
//!  plan_stage
//!     ├─ switch_to_broadcast: a join side measured below the threshold?
//!     │     yes ─▶ local_shuffle_read: tasks over whole map outputs      (done)
//!     ├─ switch_to_sort_merge: a build partition over a task's memory?
//!     │     yes ─▶ the join becomes a sort-merge join; then plan_tasks
//!     └─ plan_tasks
//!           ├─ skew_join: each skewed partition split by map ranges
//!           └─ coalesce:  the other partitions grouped up to the advisory size
//!     │
//!     ▼
//!  StageShape, chosen once per stage (kept when a lost task is rerun)
//!     ├─ bind_tasks: each reader's blocks, per task
//!     └─ describe_stage: one line for EXPLAIN ANALYZE
//! ```
//!
//! As in Spark, the switch to a broadcast join comes first (it changes the
//! join, so there is nothing left to split), the skew split before
//! coalescing (a split partition is never merged with its neighbours).
//!
//! A stage qualifies when its readers are hash (or broadcast) readers and
//! its output is not read partition by partition (a forward exchange).
//! Every hash reader of a stage takes the same partitions, so matching keys
//! still meet. Splitting further needs the join to feed the stage's output
//! through row-by-row operators only (projections, filters, partial
//! aggregates), and so does switching the join, whose two inputs must each
//! be one hash reader: the side that keeps being shuffled under projections
//! and filters only, the broadcast one also under aggregates and sorts (they
//! give the same answer on one partition holding all the input). Whether a
//! partition is skewed at all is [`crate::skew`]'s rule.

pub mod coalesce;
#[cfg(test)]
mod fixtures;
pub mod local_shuffle_read;
pub mod rebalance;
pub mod skew_join;
pub mod switch_to_broadcast;
pub mod switch_to_sort_merge;

use std::ops::Range;
use std::sync::Arc;

use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::projection::ProjectionExec;

pub use coalesce::plan_tasks;
pub use local_shuffle_read::{local_reader, plan_local_tasks};
pub use rebalance::plan_rebalance_tasks;
pub use switch_to_broadcast::{BroadcastSwitch, broadcast_reader, broadcast_switch, switch_join};
pub use switch_to_sort_merge::{
    SortMergeSwitch, sort_merge_after_out_of_memory, sort_merge_switch, switch_to_sort_merge,
};

use crate::exchange::{BlockLocation, ExchangeKind, ShuffleReaderExec, ShuffleWriterExec};
use crate::explain::{PartitionSize, fmt_bytes};
use crate::skew::SkewRule;
use crate::stages::{StageJoin, collect_readers};
use skew_join::split_sides;

/// What adaptive execution may do, from the session's settings.
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveConfig {
    pub advisory_bytes: u64,
    /// Coalescing stops at this many tasks (the cluster's slots).
    pub min_tasks: usize,
    pub skew: SkewRule,
    /// A shuffled join side measured below this many bytes is broadcast
    /// (`minispark.sql.autoBroadcastJoinThreshold`; `None` when it is -1).
    pub broadcast_threshold: Option<u64>,
    /// A task's share of executor memory (the smallest memory / slots of
    /// the bounded executors: a task cannot count on its executor's other
    /// slots staying idle); `None` when no executor is bounded.
    pub task_memory: Option<u64>,
}

/// What one task of an adaptive stage reads from the hash shuffles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskShape {
    /// These whole reduce partitions, from every hash reader.
    Partitions(Range<usize>),
    /// Reduce partition `partition`; from hash reader `reader`, only the
    /// blocks of map tasks in `maps`; from the other readers, all of it.
    Split {
        partition: usize,
        reader: usize,
        maps: Range<usize>,
    },
    /// A join switched to a broadcast join: from its probe reader, the
    /// blocks that the map tasks in `maps` wrote to reduce partitions
    /// `partitions` (Spark's local shuffle reader). The broadcast side is
    /// read whole by every task.
    Local {
        maps: Vec<Range<usize>>,
        partitions: Range<usize>,
    },
}

/// How adaptive execution runs a stage: its tasks, and whether its join
/// was switched to a broadcast join. Chosen once, when the stage is first
/// bound, and kept when it is bound again, so finished tasks stay valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageShape {
    pub tasks: Vec<TaskShape>,
    pub broadcast: Option<BroadcastSwitch>,
    pub sort_merge: Option<SortMergeSwitch>,
}

/// Chooses how a stage that [`adaptive_readers`] accepted runs: as a
/// broadcast join when [`broadcast_switch`] says so, each task then reading
/// whole map outputs of the other side ([`plan_local_tasks`]); otherwise
/// with coalesced and split partitions ([`plan_tasks`]). `readers` are the
/// stage's hash readers' block lists per reduce partition.
pub fn plan_stage(
    stage_plan: &Arc<dyn ExecutionPlan>,
    join: Option<StageJoin>,
    readers: &[Vec<Vec<BlockLocation>>],
    splittable: &[bool],
    config: &AdaptiveConfig,
) -> StageShape {
    if let Some(switch) = broadcast_switch(stage_plan, join, readers, config.broadcast_threshold) {
        let probe = &readers[1 - switch.build_reader()];
        return StageShape {
            tasks: plan_local_tasks(probe, config),
            broadcast: Some(switch),
            sort_merge: None,
        };
    }
    let tasks = plan_tasks(readers, splittable, config);
    // The reduce partitions each task's hash table holds.
    let task_partitions: Vec<Vec<usize>> = tasks
        .iter()
        .map(|t| match t {
            TaskShape::Partitions(range) => range.clone().collect(),
            TaskShape::Split { partition, .. } => vec![*partition],
            TaskShape::Local { partitions, .. } => partitions.clone().collect(),
        })
        .collect();
    StageShape {
        sort_merge: sort_merge_switch(
            stage_plan,
            join,
            readers,
            &task_partitions,
            config.task_memory,
        ),
        tasks,
        broadcast: None,
    }
}

/// Which hash readers of a stage (in [`collect_readers`] order) a skew
/// split may cut, or `None` when the stage cannot adapt at all.
pub fn adaptive_readers(stage_plan: &Arc<dyn ExecutionPlan>) -> Option<Vec<bool>> {
    // A coalesce's tasks each read a fixed range of reader partitions.
    if crate::repartition::coalesce::contains_coalesce(stage_plan) {
        return None;
    }
    let mut kinds = vec![];
    collect_readers(stage_plan, &mut |r| kinds.push(r.kind()));
    let hash_readers = kinds.iter().filter(|k| **k == ExchangeKind::Hash).count();
    let others_ok = kinds
        .iter()
        .all(|k| matches!(k, ExchangeKind::Hash | ExchangeKind::Broadcast));
    if hash_readers == 0 || !others_ok {
        return None;
    }
    let mut splittable = vec![false; kinds.len()];
    // Below the stage's shuffle writer.
    let output = match stage_plan.downcast_ref::<ShuffleWriterExec>() {
        Some(writer) => writer.input(),
        None => stage_plan,
    };
    if let Some(join) = row_local_join(output) {
        let (left_ok, right_ok) = split_sides(join.join_type());
        for (side, ok) in [(join.left(), left_ok), (join.right(), right_ok)] {
            if let (true, Some(reader)) = (ok, direct_reader(side)) {
                // The reader's position among all readers of the stage.
                let mut index = 0;
                let mut found = None;
                collect_readers(stage_plan, &mut |r| {
                    if std::ptr::eq(r, reader) {
                        found = Some(index);
                    }
                    index += 1;
                });
                if let Some(i) = found {
                    splittable[i] = kinds[i] == ExchangeKind::Hash;
                }
            }
        }
    }
    // Only hash readers are shaped; broadcast readers keep their one list.
    Some(
        kinds
            .iter()
            .zip(splittable)
            .filter(|(k, _)| **k == ExchangeKind::Hash)
            .map(|(_, s)| s)
            .collect(),
    )
}

/// The partitioned hash join a switch may re-plan: the stage's only
/// readers are its two hash inputs (`readers`, left then right), only
/// row-by-row operators stand between it and the stage's output, and it is
/// not a null-aware anti join (`NOT IN`, which has one form only).
fn switchable_join<'a>(
    stage_plan: &'a Arc<dyn ExecutionPlan>,
    readers: &[Vec<Vec<BlockLocation>>],
) -> Option<&'a HashJoinExec> {
    let mut kinds = vec![];
    collect_readers(stage_plan, &mut |r| kinds.push(r.kind()));
    if kinds != [ExchangeKind::Hash, ExchangeKind::Hash] || readers.len() != 2 {
        return None;
    }
    let output = match stage_plan.downcast_ref::<ShuffleWriterExec>() {
        Some(writer) => writer.input(),
        None => stage_plan,
    };
    row_local_join(output).filter(|j| !j.null_aware)
}

/// The partitioned hash join under a stage's output when only row-by-row
/// operators separate them.
fn row_local_join(plan: &Arc<dyn ExecutionPlan>) -> Option<&HashJoinExec> {
    if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
        return (*join.partition_mode() == PartitionMode::Partitioned).then_some(join);
    }
    let row_local = plan.is::<ProjectionExec>()
        || plan.is::<FilterExec>()
        || plan
            .downcast_ref::<AggregateExec>()
            .is_some_and(|a| *a.mode() == AggregateMode::Partial);
    match (row_local, plan.children().as_slice()) {
        (true, [only]) => row_local_join(only),
        _ => None,
    }
}

/// The shuffle reader a join input reads, through row-by-row operators.
fn direct_reader(plan: &Arc<dyn ExecutionPlan>) -> Option<&ShuffleReaderExec> {
    if let Some(reader) = plan.downcast_ref::<ShuffleReaderExec>() {
        return Some(reader);
    }
    let row_local = plan.is::<ProjectionExec>() || plan.is::<FilterExec>();
    match (row_local, plan.children().as_slice()) {
        (true, [only]) => direct_reader(only),
        _ => None,
    }
}

/// Sizes of each reduce partition of one reader's block lists.
pub fn partition_sizes(partitions: &[Vec<BlockLocation>]) -> Vec<PartitionSize> {
    partitions
        .iter()
        .map(|blocks| PartitionSize {
            rows: blocks.iter().map(|b| b.rows).sum(),
            bytes: blocks.iter().map(|b| b.bytes).sum(),
        })
        .collect()
}

/// Reader `reader`'s block list for each task of `tasks`.
pub fn bind_tasks(
    tasks: &[TaskShape],
    reader: usize,
    partitions: &[Vec<BlockLocation>],
) -> Vec<Vec<BlockLocation>> {
    tasks
        .iter()
        .map(|task| match task {
            TaskShape::Partitions(range) => {
                range.clone().flat_map(|p| partitions[p].clone()).collect()
            }
            TaskShape::Split {
                partition,
                reader: r,
                maps,
            } => partitions[*partition]
                .iter()
                .filter(|b| *r != reader || maps.contains(&b.map_partition))
                .cloned()
                .collect(),
            TaskShape::Local {
                maps,
                partitions: reduce,
            } => {
                let mut blocks: Vec<BlockLocation> = partitions
                    .iter()
                    .flatten()
                    .filter(|b| maps.iter().any(|r| r.contains(&b.map_partition)))
                    .filter(|b| reduce.contains(&b.reduce_partition))
                    .cloned()
                    .collect();
                blocks.sort_by_key(|b| (b.map_partition, b.reduce_partition));
                blocks
            }
        })
        .collect()
}

/// One line for EXPLAIN ANALYZE: what adaptive execution did to a stage.
pub fn describe_stage(partitions: usize, shape: &StageShape) -> Option<String> {
    let Some(switch) = &shape.broadcast else {
        let tasks = describe_tasks(partitions, &shape.tasks);
        let Some(s) = &shape.sort_merge else {
            return tasks;
        };
        let which = match s.switched.as_slice() {
            [0] => format!("join {}", s.join),
            [_] => format!("a join under join {}", s.join),
            many if many.contains(&0) => {
                format!("join {} and {} joins under it", s.join, many.len() - 1)
            }
            many => format!("{} joins under join {}", many.len(), s.join),
        };
        if s.after_out_of_memory {
            let join = format!(
                "adaptive: {which} switched to sort-merge after a task ran out of memory \
                 building a hash table"
            );
            return Some(match tasks {
                Some(t) => format!("{join}; {}", t.trim_start_matches("adaptive: ")),
                None => join,
            });
        }
        let join = format!(
            "adaptive: {which} switched to sort-merge: largest build partition measured {} in \
             {} rows, {} as a hash table > a task's memory {}",
            fmt_bytes(s.build_partition_bytes),
            s.build_partition_rows,
            fmt_bytes(s.hash_table_bytes),
            fmt_bytes(s.task_memory),
        );
        return Some(match tasks {
            Some(t) => format!("{join}; {}", t.trim_start_matches("adaptive: ")),
            None => join,
        });
    };
    Some(format!(
        "adaptive: join {} switched to broadcast: build side ({}) measured {} < threshold {}; \
         {partitions} partitions -> {} tasks reading whole map outputs of the {} side",
        switch.join,
        if switch.swapped { "right" } else { "left" },
        fmt_bytes(switch.build_bytes),
        fmt_bytes(switch.threshold),
        shape.tasks.len(),
        if switch.swapped { "left" } else { "right" },
    ))
}

/// One line for EXPLAIN ANALYZE: how the partitions became tasks.
pub fn describe_tasks(partitions: usize, tasks: &[TaskShape]) -> Option<String> {
    let identity = tasks.len() == partitions
        && tasks
            .iter()
            .enumerate()
            .all(|(i, t)| *t == TaskShape::Partitions(i..i + 1));
    if identity {
        return None;
    }
    let mut splits: Vec<(usize, usize)> = vec![];
    for t in tasks {
        if let TaskShape::Split { partition, .. } = t {
            match splits.last_mut() {
                Some((p, k)) if p == partition => *k += 1,
                _ => splits.push((*partition, 1)),
            }
        }
    }
    let coalesced = tasks
        .iter()
        .filter(|t| matches!(t, TaskShape::Partitions(r) if r.len() > 1))
        .count();
    let mut text = format!("adaptive: {partitions} partitions -> {} tasks", tasks.len());
    if coalesced > 0 {
        text.push_str(&format!(
            "; {coalesced} tasks read several small partitions"
        ));
    }
    for (p, k) in splits {
        text.push_str(&format!("; skewed p{p} split into {k} tasks by map ranges"));
    }
    Some(text)
}
