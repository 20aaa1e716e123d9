//! Adaptive execution: choosing a stage's tasks from its inputs' real sizes.
//!
//! A stage that reads hash shuffles starts once its input stages are done,
//! so the bytes of every (map task, reduce partition) block are known. Its
//! tasks need not be one per reduce partition:
//!
//! ```text
//!  reduce partitions   p0 ▏  p1 ▏  p2 ██████████████  p3 ▎  p4 ▏
//!  tasks               └─ task 0 ─┘  task 1 │ task 2   └ task 3 ┘
//!                      coalesced      p2 split by map      coalesced
//!                      (small)        ranges (skewed)
//! ```
//!
//! * **Coalescing**: neighbouring small partitions are read by one task, up
//!   to `minispark.adaptive.advisoryPartitionSizeInBytes`, but never into
//!   fewer tasks than the cluster has slots (Spark's "parallelism first").
//!   Every hash reader of the stage takes the same partitions, so matching
//!   keys still meet.
//! * **Splitting a skewed partition** (Spark's skew join): when a join's
//!   side has a skewed partition (see [`crate::skew`]), several tasks read
//!   it, each a range of its map outputs, and each reads the other side's
//!   whole partition. Only the side whose rows the join may process apart
//!   is split: the left of INNER, LEFT, LEFT SEMI and LEFT ANTI joins, the
//!   right of INNER, RIGHT, RIGHT SEMI and RIGHT ANTI joins.
//!
//! A stage qualifies when its readers are hash (or broadcast) readers and
//! its output is not read partition by partition (a forward exchange);
//! splitting further needs the join to feed the stage's output through
//! row-by-row operators only (projections, filters, partial aggregates).

use std::ops::Range;
use std::sync::Arc;

use datafusion::common::JoinType;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::projection::ProjectionExec;

use crate::exchange::{BlockLocation, ExchangeKind, ShuffleReaderExec, ShuffleWriterExec};
use crate::explain::PartitionSize;
use crate::skew::{SkewRule, median_bytes};
use crate::stages::collect_readers;

/// What adaptive execution may do, from the session's settings.
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveConfig {
    pub advisory_bytes: u64,
    /// Coalescing stops at this many tasks (the cluster's slots).
    pub min_tasks: usize,
    pub skew: SkewRule,
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
}

/// Which hash readers of a stage (in [`collect_readers`] order) a skew
/// split may cut, or `None` when the stage cannot adapt at all.
pub fn adaptive_readers(stage_plan: &Arc<dyn ExecutionPlan>) -> Option<Vec<bool>> {
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

/// Which sides of a join may be split by map ranges without changing its
/// answer: a side whose rows are matched independently of each other.
fn split_sides(join_type: &JoinType) -> (bool, bool) {
    match join_type {
        JoinType::Inner => (true, true),
        JoinType::Left | JoinType::LeftSemi | JoinType::LeftAnti => (true, false),
        JoinType::Right | JoinType::RightSemi | JoinType::RightAnti => (false, true),
        _ => (false, false),
    }
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

/// The tasks of an adaptive stage. `readers` are the stage's hash readers'
/// block lists per reduce partition; `splittable` says which may be split.
pub fn plan_tasks(
    readers: &[Vec<Vec<BlockLocation>>],
    splittable: &[bool],
    config: &AdaptiveConfig,
) -> Vec<TaskShape> {
    let n = readers.first().map(Vec::len).unwrap_or(0);
    let sizes: Vec<Vec<PartitionSize>> = readers.iter().map(|r| partition_sizes(r)).collect();
    let total = |p: usize| -> u64 { sizes.iter().map(|s| s[p].bytes).sum() };

    // Skewed partitions of splittable readers: split the largest side.
    let mut split: Vec<Option<usize>> = vec![None; n];
    for (r, reader_sizes) in sizes.iter().enumerate() {
        if !splittable.get(r).copied().unwrap_or(false) {
            continue;
        }
        for (p, _) in config.skew.skewed(reader_sizes) {
            let better = split[p].is_none_or(|other| reader_sizes[p].bytes > sizes[other][p].bytes);
            if better {
                split[p] = Some(r);
            }
        }
    }

    let all_bytes: u64 = (0..n).map(total).sum();
    let target = config
        .advisory_bytes
        .min(all_bytes / config.min_tasks.max(1) as u64)
        .max(1);
    let mut tasks = vec![];
    let mut group: Option<(usize, u64)> = None; // (first partition, bytes)
    for p in 0..n {
        if let Some(r) = split[p] {
            if let Some((start, _)) = group.take() {
                tasks.push(TaskShape::Partitions(start..p));
            }
            let median = median_bytes(&sizes[r]);
            let piece = target.max(median).max(1);
            for maps in map_ranges(&readers[r][p], piece) {
                tasks.push(TaskShape::Split {
                    partition: p,
                    reader: r,
                    maps,
                });
            }
            continue;
        }
        let bytes = total(p);
        group = match group {
            Some((start, acc)) if acc + bytes <= target => Some((start, acc + bytes)),
            Some((start, _)) => {
                tasks.push(TaskShape::Partitions(start..p));
                Some((p, bytes))
            }
            None => Some((p, bytes)),
        };
    }
    if let Some((start, _)) = group {
        tasks.push(TaskShape::Partitions(start..n));
    }
    tasks
}

/// Consecutive map-task ranges of a partition's blocks of about `piece`
/// bytes each (at least two ranges when there are two map tasks).
fn map_ranges(blocks: &[BlockLocation], piece: u64) -> Vec<Range<usize>> {
    let mut maps: Vec<(usize, u64)> = vec![];
    for b in blocks {
        match maps.last_mut() {
            Some((m, bytes)) if *m == b.map_partition => *bytes += b.bytes,
            _ => maps.push((b.map_partition, b.bytes)),
        }
    }
    maps.sort_by_key(|(m, _)| *m);
    if maps.len() < 2 {
        // One map task wrote it all: it cannot be split by map ranges.
        return std::iter::once(0..usize::MAX).collect();
    }
    let total: u64 = maps.iter().map(|(_, b)| b).sum();
    let pieces = (total.div_ceil(piece) as usize).clamp(2, maps.len());
    let per_piece = total.div_ceil(pieces as u64);
    let mut ranges = vec![];
    let mut start = 0;
    let mut acc = 0;
    for (i, (m, bytes)) in maps.iter().enumerate() {
        acc += bytes;
        let last = i + 1 == maps.len();
        if (acc >= per_piece && ranges.len() + 1 < pieces) || last {
            let end = if last { usize::MAX } else { m + 1 };
            ranges.push(start..end);
            start = m + 1;
            acc = 0;
        }
    }
    ranges
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
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn block(map: usize, reduce: usize, bytes: u64) -> BlockLocation {
        BlockLocation {
            executor_id: "e".into(),
            address: "a".into(),
            job_id: "j".into(),
            stage_id: 0,
            map_partition: map,
            reduce_partition: reduce,
            bytes,
            rows: bytes,
        }
    }

    /// `maps` map tasks each writing `sizes[p]` bytes to partition p.
    fn reader(maps: usize, sizes: &[u64]) -> Vec<Vec<BlockLocation>> {
        sizes
            .iter()
            .enumerate()
            .map(|(p, &s)| (0..maps).map(|m| block(m, p, s)).collect())
            .collect()
    }

    fn config(min_tasks: usize) -> AdaptiveConfig {
        AdaptiveConfig {
            advisory_bytes: 1000,
            min_tasks,
            skew: SkewRule {
                factor: 5.0,
                threshold_bytes: 100,
            },
        }
    }

    #[test]
    fn small_partitions_are_coalesced_but_not_below_the_slots() {
        let r = reader(2, &[10, 10, 10, 10, 10, 10, 10, 10]);
        let tasks = plan_tasks(&[r.clone()], &[false], &config(1));
        assert_eq!(tasks, vec![TaskShape::Partitions(0..8)]);
        let tasks = plan_tasks(&[r.clone()], &[false], &config(4));
        assert_eq!(tasks.len(), 4, "{tasks:?}");
        // Every partition is read exactly once.
        let bound = bind_tasks(&tasks, 0, &r);
        let blocks: usize = bound.iter().map(Vec::len).sum();
        assert_eq!(blocks, 16);
    }

    #[test]
    fn a_skewed_partition_is_split_and_the_other_side_replicated() {
        let big = reader(4, &[10, 10, 400, 10]);
        let small = reader(4, &[5, 5, 5, 5]);
        let tasks = plan_tasks(&[big.clone(), small.clone()], &[true, false], &config(1));
        let splits: Vec<_> = tasks
            .iter()
            .filter(|t| matches!(t, TaskShape::Split { partition: 2, .. }))
            .collect();
        assert!(splits.len() >= 2, "{tasks:?}");
        // The big side's partition 2 is read once in total, by map ranges...
        let big_bound = bind_tasks(&tasks, 0, &big);
        let small_bound = bind_tasks(&tasks, 1, &small);
        let mut big_p2: Vec<usize> = big_bound
            .iter()
            .flatten()
            .filter(|b| b.reduce_partition == 2)
            .map(|b| b.map_partition)
            .collect();
        big_p2.sort();
        assert_eq!(big_p2, vec![0, 1, 2, 3]);
        // ...and the small side's partition 2 by every split task.
        for (task, shape) in tasks.iter().enumerate() {
            if matches!(shape, TaskShape::Split { .. }) {
                assert_eq!(small_bound[task].len(), 4);
            }
        }
        assert!(
            describe_tasks(4, &tasks)
                .unwrap()
                .contains("skewed p2 split")
        );
    }

    #[test]
    fn a_side_that_may_not_be_split_is_not() {
        let big = reader(4, &[10, 10, 400, 10]);
        let tasks = plan_tasks(&[big], &[false], &config(4));
        assert!(tasks.iter().all(|t| matches!(t, TaskShape::Partitions(_))));
    }
}
