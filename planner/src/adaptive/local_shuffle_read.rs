//! Reading whole map outputs where they were written (Spark's
//! `OptimizeShuffleWithLocalRead`, the "local shuffle reader").
//!
//! Once a join is switched to a broadcast join ([`super::switch_to_broadcast`]),
//! the rows of its other (probe) side no longer need to meet their partners
//! in one hash partition: any task may read any of its blocks. So each task
//! reads whole map outputs, those one executor wrote, and runs there: the
//! big side never crosses the network again, and no partition is skewed.
//!
//! ```text
//!   exec A: m0 [p0 p1 p2 p3]  m2 [p0 p1 p2 p3]  ─▶ task 0 on exec A: m0, m2
//!   exec B: m1 [p0 p1 p2 p3]                    ─▶ task 1 on exec B: m1
//!   exec B: m3 [p0 p1 │ p2 p3]  (large)         ─▶ task 2: m3 p0..p1, task 3: m3 p2..
//! ```
//!
//! Map outputs are grouped up to the advisory size, but into no fewer tasks
//! than slots; one larger than that is cut into reduce partition ranges.

use std::ops::Range;

use datafusion::common::Result;
use datafusion::physical_expr::Partitioning;
use datafusion::physical_plan::ExecutionPlan as _;

use super::{AdaptiveConfig, TaskShape};
use crate::exchange::{BlockLocation, ShuffleReaderExec};

/// The tasks of a join switched to a broadcast join, over its probe
/// reader's blocks (per reduce partition): whole map outputs, each task
/// reading those of one executor (local reads, when it runs there), grouped
/// into tasks of about the target size: the advisory size, but no fewer
/// tasks than slots. Each executor's share is cut into a whole number of
/// tasks, at the map boundaries nearest to its multiples of the target, so
/// equal map outputs make exactly as many tasks as slots, not one more
/// task in a second wave. A map output larger than the target is cut into
/// ranges of reduce partitions. The tasks cover every map task and
/// partition index, also those that wrote nothing, so a map output
/// recomputed later (perhaps elsewhere) is still read in full.
pub fn plan_local_tasks(probe: &[Vec<BlockLocation>], config: &AdaptiveConfig) -> Vec<TaskShape> {
    use std::collections::BTreeMap;
    let n = probe.len();
    // Each executor's map outputs: bytes per reduce partition.
    let mut executors: BTreeMap<&str, BTreeMap<usize, Vec<u64>>> = BTreeMap::new();
    for b in probe.iter().flatten() {
        let sizes = executors
            .entry(b.executor_id.as_str())
            .or_default()
            .entry(b.map_partition)
            .or_insert_with(|| vec![0; n]);
        if let Some(s) = sizes.get_mut(b.reduce_partition) {
            *s += b.bytes;
        }
    }
    let bytes_of = |maps: &BTreeMap<usize, Vec<u64>>| -> u64 { maps.values().flatten().sum() };
    let total: u64 = executors.values().map(bytes_of).sum();
    let pieces = (total.div_ceil(config.advisory_bytes.max(1)) as usize).max(config.min_tasks);
    let target = total.div_ceil(pieces.max(1) as u64).max(1);
    let all = 0..usize::MAX;
    let mut tasks = vec![];
    for maps in executors.values() {
        // This executor's tasks: a whole number of about `target` bytes.
        let bytes = bytes_of(maps);
        let share = (bytes as f64 / target as f64).round().max(1.0) as u64;
        let target = bytes.div_ceil(share).max(1);
        let mut group: Vec<Range<usize>> = vec![];
        let (mut before, mut boundary) = (0, target);
        for (&m, sizes) in maps {
            let bytes: u64 = sizes.iter().sum();
            let after = before + bytes;
            let this = m..m + 1;
            if bytes > target {
                flush(&mut tasks, &mut group);
                for partitions in partition_ranges(sizes, target) {
                    tasks.push(TaskShape::Local {
                        maps: vec![this.clone()],
                        partitions,
                    });
                }
                boundary = after + target;
            } else {
                // Ending the group before this map is nearer the boundary.
                if !group.is_empty() && after > boundary && after - boundary > boundary - before {
                    flush(&mut tasks, &mut group);
                    boundary += target;
                }
                group.push(this);
                if after >= boundary {
                    flush(&mut tasks, &mut group);
                    boundary += target;
                }
            }
            before = after;
        }
        flush(&mut tasks, &mut group);
    }
    // Map tasks that wrote nothing now: every one of their partitions goes
    // to one task (the first that reads all partitions, or a new one).
    let seen: std::collections::BTreeSet<usize> = executors
        .values()
        .flat_map(|maps| maps.keys().copied())
        .collect();
    let mut unseen = vec![];
    let mut next = 0;
    for &m in &seen {
        if m > next {
            unseen.push(next..m);
        }
        next = m + 1;
    }
    unseen.push(next..usize::MAX);
    let whole = tasks
        .iter_mut()
        .find(|t| matches!(t, TaskShape::Local { partitions, .. } if *partitions == all));
    match whole {
        Some(TaskShape::Local { maps, .. }) => {
            maps.extend(unseen);
            maps.sort_by_key(|r| r.start);
        }
        _ => tasks.push(TaskShape::Local {
            maps: unseen,
            partitions: all,
        }),
    }
    tasks
}

/// Ends a group of whole map outputs as a task.
fn flush(tasks: &mut Vec<TaskShape>, group: &mut Vec<Range<usize>>) {
    if !group.is_empty() {
        tasks.push(TaskShape::Local {
            maps: std::mem::take(group),
            partitions: 0..usize::MAX,
        });
    }
}

/// Consecutive ranges of reduce partitions of about `target` bytes each;
/// the first starts at 0, the last is open-ended.
fn partition_ranges(sizes: &[u64], target: u64) -> Vec<Range<usize>> {
    let mut ranges = vec![];
    let (mut start, mut acc) = (0, 0);
    for (p, &bytes) in sizes.iter().enumerate() {
        if acc > 0 && acc + bytes > target {
            ranges.push(start..p);
            (start, acc) = (p, 0);
        }
        acc += bytes;
    }
    ranges.push(start..usize::MAX);
    ranges
}

/// The probe side of a switched join: `reader` bound to one block list per
/// task. Its tasks no longer hold whole hash partitions, and it says so.
pub fn local_reader(
    reader: &ShuffleReaderExec,
    tasks: Vec<Vec<BlockLocation>>,
) -> Result<ShuffleReaderExec> {
    ShuffleReaderExec::new_unordered(
        reader.stage_id(),
        reader.kind(),
        Partitioning::UnknownPartitioning(tasks.len()),
        reader.schema(),
    )
    .resolved(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptive::bind_tasks;
    use crate::adaptive::fixtures::*;

    #[test]
    fn local_tasks_read_every_probe_block_once() {
        // 4 maps x 8 partitions; map 2 wrote far more than the others.
        let mut probe = reader(4, &[10; 8]);
        for block in probe.iter_mut().flatten() {
            if block.map_partition == 2 {
                block.bytes = 200;
            }
        }
        // Maps 5.. wrote nothing now (a recomputation later might).
        let tasks = plan_local_tasks(&probe, &config(2));
        let bound = bind_tasks(&tasks, 0, &probe);
        let mut read: Vec<(usize, usize)> = bound
            .iter()
            .flatten()
            .map(|b| (b.map_partition, b.reduce_partition))
            .collect();
        read.sort();
        let mut all: Vec<(usize, usize)> = probe
            .iter()
            .flatten()
            .map(|b| (b.map_partition, b.reduce_partition))
            .collect();
        all.sort();
        assert_eq!(read, all, "{tasks:?}");
        // The big map output is cut by partitions, the small ones grouped.
        let pieces = tasks
            .iter()
            .filter(|t| matches!(t, TaskShape::Local { maps, .. } if maps.len() == 1 && maps[0] == (2..3)))
            .count();
        assert!(pieces >= 2, "{tasks:?}");
        assert!(tasks.len() < 4 * 8, "{tasks:?}");
        // Every (map, partition) index is covered exactly once, also
        // beyond the maps and partitions that wrote something.
        for (m, p) in [(0, 0), (2, 7), (3, 100), (9, 3), (1000, 1000)] {
            let covering = tasks
                .iter()
                .filter(|t| {
                    matches!(t, TaskShape::Local { maps, partitions }
                        if maps.iter().any(|r| r.contains(&m)) && partitions.contains(&p))
                })
                .count();
            assert_eq!(covering, 1, "({m}, {p}) in {tasks:?}");
        }
        // Map outputs of about equal size: exactly one task per slot.
        let mut even = reader(16, &[10; 4]);
        for block in even.iter_mut().flatten() {
            block.bytes += (block.map_partition % 3) as u64;
        }
        let tasks = plan_local_tasks(&even, &config(4));
        assert_eq!(tasks.len(), 4, "{tasks:?}");
        assert!(
            tasks
                .iter()
                .all(|t| matches!(t, TaskShape::Local { partitions, .. } if partitions.start == 0)),
            "{tasks:?}"
        );
        // Map outputs on two executors: each task reads one executor's.
        let mut spread = reader(16, &[10; 4]);
        for block in spread.iter_mut().flatten() {
            if block.map_partition % 2 == 1 {
                block.executor_id = "f".into();
            }
        }
        let tasks = plan_local_tasks(&spread, &config(4));
        assert_eq!(tasks.len(), 4, "{tasks:?}");
        for blocks in bind_tasks(&tasks, 0, &spread) {
            assert!(
                blocks
                    .iter()
                    .all(|b| b.executor_id == blocks[0].executor_id),
                "{tasks:?}"
            );
        }
        // No blocks at all: one task.
        assert_eq!(plan_local_tasks(&vec![vec![]; 4], &config(2)).len(), 1);
    }
}
