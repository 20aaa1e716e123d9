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
//! * **Switching a shuffled join to a broadcast join** (Spark's AQE join
//!   switch): the planner shuffles both sides of a join whose sides it
//!   *estimated* above `minispark.sql.autoBroadcastJoinThreshold`. When a
//!   side's shuffle turns out smaller than the threshold (a selective
//!   filter, a GROUP BY with few groups, an estimate that was only a
//!   guess), the stage runs the join as a broadcast join instead: every
//!   task reads all of the small side's blocks and builds its hash table
//!   from them, and the big side's blocks no longer need to meet their
//!   partners, so its tasks read whole map outputs, each task those one
//!   executor wrote, and run there (Spark's "local shuffle reader": the big
//!   side never crosses the network again, and no partition is skewed).
//!
//! ```text
//!   planned: task p reads partition p of both sides    switched (small side measured < threshold)
//!   small  m0 ─┬─▶ p0 ─▶ task 0                         small  all blocks ─┬──▶ task 0 on exec A
//!          m1 ─┴─▶ p1 ─▶ task 1                                            └──▶ task 1 on exec B
//!   big    m0 (exec A) ─┬─▶ p0 ─▶ task 0                big    m0 (exec A) ─▶ task 0, all its partitions
//!          m1 (exec B) ─┴─▶ p1 ─▶ task 1                       m1 (exec B) ─▶ task 1, all its partitions
//!   hash join, partitioned mode                         hash join, CollectLeft mode (small side built)
//! ```
//!
//!   Map outputs are grouped up to the advisory size, but into no fewer
//!   tasks than slots; one larger than that is cut into reduce partition
//!   ranges.
//!
//!   The build (left) side is broadcast when its measured shuffle bytes are
//!   below the threshold and the join type allows it (not when the join
//!   must emit the build side's unmatched rows, as a LEFT join's left
//!   side: every task would emit them); otherwise the right
//!   side, with the join's inputs swapped. A join with a `SHUFFLE_HASH`
//!   hint stays shuffled, sort-merge joins (MERGE hint) are never switched,
//!   and a threshold of -1 turns the switch off. The stage still writes
//!   its output with its own partitioning, so the stages reading it do not
//!   notice.
//!
//! A stage qualifies when its readers are hash (or broadcast) readers and
//! its output is not read partition by partition (a forward exchange);
//! splitting further needs the join to feed the stage's output through
//! row-by-row operators only (projections, filters, partial aggregates),
//! and so does switching the join, whose two inputs must each be one hash
//! reader: the side that keeps being shuffled under projections and filters
//! only, the broadcast one also under aggregates and sorts (they give the
//! same answer on one partition holding all the input).

use std::ops::Range;
use std::sync::Arc;

use datafusion::common::{JoinType, Result, internal_err};
use datafusion::physical_expr::Partitioning;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{ExecutionPlan, replace_children_if_necessary};

use crate::exchange::{BlockLocation, ExchangeKind, ShuffleReaderExec, ShuffleWriterExec};
use crate::explain::{PartitionSize, fmt_bytes};
use crate::skew::{SkewRule, median_bytes};
use crate::stages::{StageJoin, collect_readers, emits_unmatched_build_rows};

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
}

/// A shuffled hash join run as a broadcast join (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BroadcastSwitch {
    /// The join's number in EXPLAIN's list of joins.
    pub join: usize,
    /// True when the right side is broadcast (the join's inputs swapped).
    pub swapped: bool,
    /// The broadcast side's shuffle bytes, over all its partitions.
    pub build_bytes: u64,
    pub threshold: u64,
}

impl BroadcastSwitch {
    /// Which of the stage's two hash readers is broadcast.
    pub fn build_reader(&self) -> usize {
        usize::from(self.swapped)
    }
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
        };
    }
    StageShape {
        tasks: plan_tasks(readers, splittable, config),
        broadcast: None,
    }
}

/// Whether the stage's partitioned hash join should run as a broadcast
/// join, from the measured sizes of its two hash readers (`readers`, left
/// then right). Only a stage whose only readers are the join's two inputs
/// qualifies, and only a join without a `SHUFFLE_HASH` hint (`join`, noted
/// when the stage was cut: the hints are gone from the stage plan).
pub fn broadcast_switch(
    stage_plan: &Arc<dyn ExecutionPlan>,
    join: Option<StageJoin>,
    readers: &[Vec<Vec<BlockLocation>>],
    threshold: Option<u64>,
) -> Option<BroadcastSwitch> {
    let threshold = threshold?;
    let note = join.filter(|j| !j.shuffle_hint)?;
    let mut kinds = vec![];
    collect_readers(stage_plan, &mut |r| kinds.push(r.kind()));
    if kinds != [ExchangeKind::Hash, ExchangeKind::Hash] || readers.len() != 2 {
        return None;
    }
    let output = match stage_plan.downcast_ref::<ShuffleWriterExec>() {
        Some(writer) => writer.input(),
        None => stage_plan,
    };
    let hash_join = row_local_join(output)?;
    if hash_join.null_aware {
        return None;
    }
    let bytes = |r: &Vec<Vec<BlockLocation>>| -> u64 { r.iter().flatten().map(|b| b.bytes).sum() };
    let (left, right) = (bytes(&readers[0]), bytes(&readers[1]));
    let join_type = *hash_join.join_type();
    // The broadcast side reads all its blocks as one partition; the other
    // side's tasks no longer hold whole hash partitions, so only row-by-row
    // operators may stand between it and the join.
    let (l, r) = (hash_join.left(), hash_join.right());
    let left_ok = left < threshold
        && !emits_unmatched_build_rows(&join_type)
        && build_reader(l).is_some()
        && direct_reader(r).is_some();
    let right_ok = right < threshold
        && !emits_unmatched_build_rows(&join_type.swap())
        && build_reader(r).is_some()
        && direct_reader(l).is_some();
    let swapped = match (left_ok, right_ok) {
        (true, true) => right < left,
        (true, false) => false,
        (false, true) => true,
        (false, false) => return None,
    };
    Some(BroadcastSwitch {
        join: note.number,
        swapped,
        build_bytes: if swapped { right } else { left },
        threshold,
    })
}

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

/// The broadcast side of a switched join: `reader` (a hash reader) as one
/// partition holding all of its shuffle's `blocks`, what a broadcast
/// reader is.
pub fn broadcast_reader(
    reader: &ShuffleReaderExec,
    blocks: Vec<BlockLocation>,
) -> Result<ShuffleReaderExec> {
    ShuffleReaderExec::new_unordered(
        reader.stage_id(),
        ExchangeKind::Broadcast,
        Partitioning::UnknownPartitioning(1),
        reader.schema(),
    )
    .resolved(vec![blocks])
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

/// The stage plan (readers bound by [`broadcast_reader`] and
/// [`local_reader`]) with its partitioned hash join made a `CollectLeft`
/// one, its inputs swapped first when the right side is broadcast.
pub fn switch_join(
    plan: Arc<dyn ExecutionPlan>,
    switch: &BroadcastSwitch,
) -> Result<Arc<dyn ExecutionPlan>> {
    if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
        // Runtime state (a dynamic filter) is rebuilt by each task.
        let join = join.builder().reset_state();
        return if switch.swapped {
            join.build()?.swap_inputs(PartitionMode::CollectLeft)
        } else {
            join.with_partition_mode(PartitionMode::CollectLeft)
                .build_exec()
        };
    }
    match plan.children().as_slice() {
        [only] => {
            let child = switch_join(Arc::clone(only), switch)?;
            replace_children_if_necessary(plan, vec![child])
        }
        _ => internal_err!(
            "join {} switched to broadcast, but the stage has no join under {}",
            switch.join,
            plan.name()
        ),
    }
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

/// The shuffle reader under a join input that may be broadcast: through
/// operators that give the same answer on one partition holding all of
/// the input as on its hash partitions (row-by-row ones, aggregates of
/// keyed groups, sorts).
fn build_reader(plan: &Arc<dyn ExecutionPlan>) -> Option<&ShuffleReaderExec> {
    if let Some(reader) = plan.downcast_ref::<ShuffleReaderExec>() {
        return Some(reader);
    }
    let keyed = plan.is::<ProjectionExec>()
        || plan.is::<FilterExec>()
        || plan.is::<SortExec>()
        || plan
            .downcast_ref::<AggregateExec>()
            .is_some_and(|a| a.limit_options().is_none());
    match (keyed, plan.children().as_slice()) {
        (true, [only]) => build_reader(only),
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
        return describe_tasks(partitions, &shape.tasks);
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
            broadcast_threshold: Some(500),
        }
    }

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
    /// partitions) on `k`, partitioned, under a projection, written by a
    /// hash writer.
    fn join_stage(join_type: JoinType) -> Arc<dyn ExecutionPlan> {
        join_stage_sorted(join_type, false)
    }

    /// [`join_stage`], with the right reader under a sort when `sorted`.
    fn join_stage_sorted(join_type: JoinType, sorted: bool) -> Arc<dyn ExecutionPlan> {
        use arrow::datatypes::{DataType, Field, Schema};
        use datafusion::common::NullEquality;
        use datafusion::physical_expr::expressions::Column;
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let k: Arc<dyn datafusion::physical_expr::PhysicalExpr> = Arc::new(Column::new("k", 0));
        let reader = |stage| -> Arc<dyn ExecutionPlan> {
            Arc::new(ShuffleReaderExec::new_unordered(
                stage,
                ExchangeKind::Hash,
                Partitioning::Hash(vec![Arc::clone(&k)], 4),
                Arc::clone(&schema),
            ))
        };
        let mut right = reader(1);
        if sorted {
            let order = datafusion::physical_expr::LexOrdering::new([
                datafusion::physical_expr::PhysicalSortExpr::new_default(Arc::clone(&k)),
            ])
            .unwrap();
            right = Arc::new(SortExec::new(order, right).with_preserve_partitioning(true));
        }
        let join: Arc<dyn ExecutionPlan> = Arc::new(
            HashJoinExec::try_new(
                reader(0),
                right,
                vec![(Arc::clone(&k), Arc::clone(&k))],
                None,
                &join_type,
                None,
                PartitionMode::Partitioned,
                NullEquality::NullEqualsNothing,
                false,
            )
            .unwrap(),
        );
        let first = join.schema().field(0).name().clone();
        let projection: Arc<dyn ExecutionPlan> = Arc::new(
            ProjectionExec::try_new(
                vec![(
                    Arc::new(Column::new(&first, 0))
                        as Arc<dyn datafusion::physical_expr::PhysicalExpr>,
                    first,
                )],
                join,
            )
            .unwrap(),
        );
        Arc::new(ShuffleWriterExec::try_new(2, projection, ExchangeKind::Hash, 4, vec![k]).unwrap())
    }

    const JOIN: Option<StageJoin> = Some(StageJoin {
        number: 3,
        shuffle_hint: false,
    });

    /// Left and right readers of `left` and `right` bytes per partition.
    fn sides(left: u64, right: u64) -> Vec<Vec<Vec<BlockLocation>>> {
        vec![reader(2, &[left; 4]), reader(2, &[right; 4])]
    }

    #[test]
    fn a_small_build_side_is_broadcast_and_a_small_probe_side_swapped_in() {
        let stage = join_stage(JoinType::Inner);
        // Left: 2 maps x 4 partitions x 10 bytes = 80 < 500.
        let switch = broadcast_switch(&stage, JOIN, &sides(10, 1000), Some(500)).unwrap();
        assert_eq!(
            switch,
            BroadcastSwitch {
                join: 3,
                swapped: false,
                build_bytes: 80,
                threshold: 500,
            }
        );
        let switch = broadcast_switch(&stage, JOIN, &sides(1000, 10), Some(500)).unwrap();
        assert!(switch.swapped);
        assert_eq!(switch.build_reader(), 1);
        // Both small: the smaller one.
        let switch = broadcast_switch(&stage, JOIN, &sides(20, 10), Some(500)).unwrap();
        assert!(switch.swapped);
        // Both large: no switch; nor at the threshold itself.
        assert_eq!(
            broadcast_switch(&stage, JOIN, &sides(1000, 1000), Some(500)),
            None
        );
        assert_eq!(
            broadcast_switch(&stage, JOIN, &sides(10, 1000), Some(80)),
            None
        );
    }

    #[test]
    fn the_preserved_side_of_an_outer_join_is_never_broadcast() {
        // LEFT, LEFT SEMI/ANTI: not the left; the right (swapped) may be.
        for join_type in [JoinType::Left, JoinType::LeftSemi, JoinType::LeftAnti] {
            let stage = join_stage(join_type);
            assert_eq!(
                broadcast_switch(&stage, JOIN, &sides(10, 1000), Some(500)),
                None,
                "{join_type}"
            );
            let switch = broadcast_switch(&stage, JOIN, &sides(1000, 10), Some(500));
            assert!(switch.unwrap().swapped, "{join_type}");
        }
        // RIGHT, RIGHT SEMI/ANTI: the mirror image.
        for join_type in [JoinType::Right, JoinType::RightSemi, JoinType::RightAnti] {
            let stage = join_stage(join_type);
            let switch = broadcast_switch(&stage, JOIN, &sides(10, 1000), Some(500));
            assert!(!switch.unwrap().swapped, "{join_type}");
            assert_eq!(
                broadcast_switch(&stage, JOIN, &sides(1000, 10), Some(500)),
                None,
                "{join_type}"
            );
        }
        // FULL: neither.
        let stage = join_stage(JoinType::Full);
        assert_eq!(
            broadcast_switch(&stage, JOIN, &sides(10, 10), Some(500)),
            None
        );
    }

    #[test]
    fn only_the_broadcast_side_may_be_more_than_row_by_row() {
        // The right side is sorted: fine on one partition holding all of
        // it (broadcast), not when its tasks read map outputs (probe).
        let stage = join_stage_sorted(JoinType::Inner, true);
        let switch = broadcast_switch(&stage, JOIN, &sides(1000, 10), Some(500));
        assert!(switch.unwrap().swapped);
        assert_eq!(
            broadcast_switch(&stage, JOIN, &sides(10, 1000), Some(500)),
            None
        );
    }

    #[test]
    fn hints_settings_and_unknown_joins_keep_the_shuffle() {
        let stage = join_stage(JoinType::Inner);
        let small = sides(10, 1000);
        let hinted = Some(StageJoin {
            number: 1,
            shuffle_hint: true,
        });
        assert_eq!(broadcast_switch(&stage, hinted, &small, Some(500)), None);
        // Threshold -1.
        assert_eq!(broadcast_switch(&stage, JOIN, &small, None), None);
        // A join the stage cutter did not note.
        assert_eq!(broadcast_switch(&stage, None, &small, Some(500)), None);
        // Adaptive execution off: plan_stage is not called; on, it falls
        // back to coalescing when nothing switches.
        let mut off = config(1);
        off.broadcast_threshold = None;
        let shape = plan_stage(&stage, JOIN, &small, &[true, true], &off);
        assert_eq!(shape.broadcast, None);
        assert!(
            shape
                .tasks
                .iter()
                .all(|t| matches!(t, TaskShape::Partitions(_) | TaskShape::Split { .. }))
        );
    }

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

    #[test]
    fn a_switched_stage_runs_a_collect_left_join_with_a_broadcast_reader() {
        use datafusion::physical_plan::displayable;
        let stage = join_stage(JoinType::Inner);
        let readers = sides(1000, 10);
        let shape = plan_stage(&stage, JOIN, &readers, &[true, true], &config(2));
        let switch = shape.broadcast.unwrap();
        assert!(switch.swapped);
        assert!(
            shape
                .tasks
                .iter()
                .all(|t| matches!(t, TaskShape::Local { .. }))
        );
        // Bind as the scheduler does: the right reader whole, the left by task.
        let mut index = 0;
        let bound = crate::stages::replace_readers(Arc::clone(&stage), &mut |r| {
            let i = index;
            index += 1;
            let reader = if i == switch.build_reader() {
                broadcast_reader(r, readers[i].iter().flatten().cloned().collect())?
            } else {
                local_reader(r, bind_tasks(&shape.tasks, i, &readers[i]))?
            };
            Ok(Arc::new(reader) as Arc<dyn ExecutionPlan>)
        })
        .unwrap();
        let plan = switch_join(bound, &switch).unwrap();
        let text = displayable(plan.as_ref()).indent(false).to_string();
        assert!(text.contains("mode=CollectLeft"), "{text}");
        // The build side (first child of the join) reads stage 1 whole.
        let join_line = text
            .lines()
            .position(|l| l.contains("HashJoinExec"))
            .unwrap();
        let build = text.lines().nth(join_line + 1).unwrap();
        assert!(build.contains("stage=1, kind=broadcast"), "{text}");
        assert_eq!(
            plan.properties().partitioning.partition_count(),
            shape.tasks.len(),
            "{text}"
        );
        // The schema is the planned one: the swap is undone by a projection.
        assert_eq!(plan.schema(), stage.schema());
        let line = describe_stage(4, &shape).unwrap();
        assert!(
            line.starts_with("adaptive: join 3 switched to broadcast: build side (right) measured 80 B < threshold 500 B; 4 partitions -> "),
            "{line}"
        );
    }

    #[test]
    fn a_side_that_may_not_be_split_is_not() {
        let big = reader(4, &[10, 10, 400, 10]);
        let tasks = plan_tasks(&[big], &[false], &config(4));
        assert!(tasks.iter().all(|t| matches!(t, TaskShape::Partitions(_))));
    }
}
