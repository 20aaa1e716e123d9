//! Coalescing small shuffle partitions (Spark's `CoalesceShufflePartitions`).
//!
//! A shuffle has as many reduce partitions as `minispark.shuffle.partitions`
//! says, sized for the biggest input the setting must serve; after a
//! selective filter or a GROUP BY with few groups most of them hold a few
//! kilobytes, and a task per partition spends its time starting up.
//! Neighbouring small partitions are read by one task, up to
//! `minispark.adaptive.advisoryPartitionSizeInBytes`, but never into fewer
//! tasks than the cluster has slots (Spark's "parallelism first"). Every
//! hash reader of the stage takes the same partitions, so matching keys
//! still meet.
//!
//! ```text
//!   partitions  p0 1 MB │ p1 2 MB │ p2 1 MB │ p3 40 MB │ p4 3 MB     advisory 8 MB
//!   tasks       └──── task 0: p0..p3 ───┘   task 1      task 2
//! ```
//!
//! Partitions the skew rule ([`super::skew_join`]) splits are left out of
//! the groups: coalescing runs around them, in the same pass.

use super::skew_join::{skewed_partitions, split_partition};
use super::{AdaptiveConfig, TaskShape, partition_sizes};
use crate::exchange::BlockLocation;
use crate::explain::PartitionSize;

/// The tasks of an adaptive stage that was not switched to a broadcast
/// join: skewed partitions split ([`super::skew_join`]), the others
/// coalesced. `readers` are the stage's hash readers' block lists per
/// reduce partition; `splittable` says which may be split.
pub fn plan_tasks(
    readers: &[Vec<Vec<BlockLocation>>],
    splittable: &[bool],
    config: &AdaptiveConfig,
) -> Vec<TaskShape> {
    let sizes: Vec<Vec<PartitionSize>> = readers.iter().map(|r| partition_sizes(r)).collect();
    // Skewed partitions of splittable readers: split the largest side.
    let split = skewed_partitions(&sizes, splittable, &config.skew);
    plan_tasks_with_splits(readers, split, config)
}

/// [`plan_tasks`] with the partitions to split chosen by the caller:
/// `split[p]` is the reader whose part of partition `p` is split by map
/// ranges (the skew rule's choice, or [`super::rebalance`]'s).
pub(super) fn plan_tasks_with_splits(
    readers: &[Vec<Vec<BlockLocation>>],
    split: Vec<Option<usize>>,
    config: &AdaptiveConfig,
) -> Vec<TaskShape> {
    let n = readers.first().map(Vec::len).unwrap_or(0);
    let sizes: Vec<Vec<PartitionSize>> = readers.iter().map(|r| partition_sizes(r)).collect();
    let total = |p: usize| -> u64 { sizes.iter().map(|s| s[p].bytes).sum() };

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
            tasks.extend(split_partition(&readers[r][p], &sizes[r], p, r, target));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptive::bind_tasks;
    use crate::adaptive::fixtures::*;

    #[test]
    fn small_partitions_are_coalesced_but_not_below_the_slots() {
        let r = reader(2, &[10, 10, 10, 10, 10, 10, 10, 10]);
        let tasks = plan_tasks(std::slice::from_ref(&r), &[false], &config(1));
        assert_eq!(tasks, vec![TaskShape::Partitions(0..8)]);
        let tasks = plan_tasks(std::slice::from_ref(&r), &[false], &config(4));
        assert_eq!(tasks.len(), 4, "{tasks:?}");
        // Every partition is read exactly once.
        let bound = bind_tasks(&tasks, 0, &r);
        let blocks: usize = bound.iter().map(Vec::len).sum();
        assert_eq!(blocks, 16);
    }
}
