//! Splitting a skewed join partition (Spark's `OptimizeSkewedJoin`).
//!
//! When a join's side has a skewed partition (see [`crate::skew`]), several
//! tasks read it, each a range of its map outputs, and each reads the other
//! side's whole partition: every row of the split side still meets every
//! row it could match.
//!
//! ```text
//!   left  p2 (skewed): m0 m1 │ m2 m3 │ m4 m5     right p2 (small): all of it
//!                      task a  task b  task c    read by task a, b and c
//! ```
//!
//! Only the side whose rows the join may process apart is split: the left
//! of INNER, LEFT, LEFT SEMI and LEFT ANTI joins, the right of INNER, RIGHT,
//! RIGHT SEMI and RIGHT ANTI joins ([`split_sides`]). A piece aims at the
//! advisory partition size, or the median partition when that is larger.

use std::ops::Range;

use datafusion::common::JoinType;

use super::TaskShape;
use crate::exchange::BlockLocation;
use crate::explain::PartitionSize;
use crate::skew::{SkewRule, median_bytes};

/// Which sides of a join may be split by map ranges without changing its
/// answer: a side whose rows are matched independently of each other.
pub fn split_sides(join_type: &JoinType) -> (bool, bool) {
    match join_type {
        JoinType::Inner => (true, true),
        JoinType::Left | JoinType::LeftSemi | JoinType::LeftAnti => (true, false),
        JoinType::Right | JoinType::RightSemi | JoinType::RightAnti => (false, true),
        _ => (false, false),
    }
}

/// For each reduce partition, the splittable reader (by index) whose part of
/// it is skewed, the largest when several are; `None` for the others.
pub(super) fn skewed_partitions(
    sizes: &[Vec<PartitionSize>],
    splittable: &[bool],
    skew: &SkewRule,
) -> Vec<Option<usize>> {
    let n = sizes.first().map(Vec::len).unwrap_or(0);
    let mut split: Vec<Option<usize>> = vec![None; n];
    for (r, reader_sizes) in sizes.iter().enumerate() {
        if !splittable.get(r).copied().unwrap_or(false) {
            continue;
        }
        for (p, _) in skew.skewed(reader_sizes) {
            let better = split[p].is_none_or(|other| reader_sizes[p].bytes > sizes[other][p].bytes);
            if better {
                split[p] = Some(r);
            }
        }
    }
    split
}

/// The tasks reading skewed partition `partition` of reader `reader`: one
/// per range of map tasks of about `target` bytes (or the reader's median
/// partition, when larger).
pub(super) fn split_partition(
    blocks: &[BlockLocation],
    sizes: &[PartitionSize],
    partition: usize,
    reader: usize,
    target: u64,
) -> Vec<TaskShape> {
    let median = median_bytes(sizes);
    let piece = target.max(median).max(1);
    map_ranges(blocks, piece)
        .into_iter()
        .map(|maps| TaskShape::Split {
            partition,
            reader,
            maps,
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptive::fixtures::*;
    use crate::adaptive::{bind_tasks, describe_tasks, plan_tasks};

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

    /// Stage 2: `join_type` of two hash readers (stages 0 and 1, 4

    #[test]
    fn a_side_that_may_not_be_split_is_not() {
        let big = reader(4, &[10, 10, 400, 10]);
        let tasks = plan_tasks(&[big], &[false], &config(4));
        assert!(tasks.iter().all(|t| matches!(t, TaskShape::Partitions(_))));
    }
}
