//! Rebalancing a `REBALANCE` shuffle's partitions (Spark's
//! `OptimizeSkewInRebalancePartitions` with `CoalesceShufflePartitions`).
//!
//! `/*+ REBALANCE(k) */` hash-partitions by `k` only as far as that helps:
//! it promises no co-location (rows of one key may end in several
//! partitions), so, unlike a join's partition, any partition over
//! `minispark.adaptive.advisoryPartitionSizeInBytes` is read by several
//! tasks, each a range of its map outputs of about the advisory size,
//! whatever the skew rule says; the other partitions are coalesced as
//! usual ([`super::coalesce`]).
//!
//! ```text
//!   partitions  p0 1 MB │ p1 2 MB │ p2 ██████ 30 MB │ p3 1 MB      advisory 8 MB
//!   tasks       task 0  (p0..p1)   │ 4 tasks by map  │ task 5
//! ```

use super::coalesce::plan_tasks_with_splits;
use super::{AdaptiveConfig, TaskShape, partition_sizes};
use crate::exchange::BlockLocation;

/// The tasks of a stage whose one hash reader (`reader`: its block lists
/// per reduce partition) reads a `REBALANCE` shuffle.
pub fn plan_rebalance_tasks(
    reader: &[Vec<BlockLocation>],
    config: &AdaptiveConfig,
) -> Vec<TaskShape> {
    let sizes = partition_sizes(reader);
    let advisory = config.advisory_bytes.max(1);
    let split: Vec<Option<usize>> = sizes
        .iter()
        .map(|s| (s.bytes > advisory).then_some(0))
        .collect();
    plan_tasks_with_splits(std::slice::from_ref(&reader.to_vec()), split, config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptive::bind_tasks;
    use crate::adaptive::fixtures::*;

    #[test]
    fn big_partitions_are_split_and_small_ones_coalesced() {
        // 4 map tasks; partition 2 holds 4 x 400 bytes, the others 4 x 10.
        let r = reader(4, &[10, 10, 400, 10]);
        let mut config = config(1);
        config.advisory_bytes = 500;
        let tasks = plan_rebalance_tasks(&r, &config);
        let splits = tasks
            .iter()
            .filter(|t| matches!(t, TaskShape::Split { partition: 2, .. }))
            .count();
        assert!(splits >= 3, "{tasks:?}");
        assert!(tasks.contains(&TaskShape::Partitions(0..2)), "{tasks:?}");
        // Every block read once.
        let bound = bind_tasks(&tasks, 0, &r);
        let mut blocks: Vec<(usize, usize)> = bound
            .iter()
            .flatten()
            .map(|b| (b.reduce_partition, b.map_partition))
            .collect();
        blocks.sort();
        blocks.dedup();
        assert_eq!(blocks.len(), 16);
        assert_eq!(bound.iter().map(Vec::len).sum::<usize>(), 16);
    }
}
