//! Switching a shuffled join to a broadcast join (Spark's
//! `DynamicJoinSelection` and the AQE re-planning of a sort-merge or
//! shuffled hash join as a broadcast hash join).
//!
//! The planner shuffles both sides of a join whose sides it *estimated*
//! above `minispark.sql.autoBroadcastJoinThreshold`. When a side's shuffle
//! turns out smaller than the threshold (a selective filter, a GROUP BY
//! with few groups, an estimate that was only a guess), the stage runs the
//! join as a broadcast join instead: every task reads all of the small
//! side's blocks ([`broadcast_reader`]) and builds its hash table from
//! them; the big side's blocks no longer need to meet their partners, so
//! its tasks read whole map outputs ([`super::local_shuffle_read`]).
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
//! The build (left) side is broadcast when its measured shuffle bytes are
//! below the threshold and the join type allows it (not when the join must
//! emit the build side's unmatched rows, as a LEFT join's left side: every
//! task would emit them); otherwise the right side, with the join's inputs
//! swapped ([`switch_join`]). A join with a `SHUFFLE_HASH` hint stays
//! shuffled, sort-merge joins (MERGE hint) are never switched, and a
//! threshold of -1 turns the switch off. The stage still writes its output
//! with its own partitioning, so the stages reading it do not notice.

use std::sync::Arc;

use datafusion::common::{Result, internal_err};
use datafusion::physical_expr::Partitioning;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{ExecutionPlan, replace_children_if_necessary};

use super::{direct_reader, switchable_join};
use crate::exchange::{BlockLocation, ExchangeKind, ShuffleReaderExec};
use crate::stages::{StageJoin, emits_unmatched_build_rows};

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
    let hash_join = switchable_join(stage_plan, readers)?;
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

#[cfg(test)]
mod tests {
    use datafusion::common::JoinType;

    use super::*;
    use crate::adaptive::fixtures::*;
    use crate::adaptive::{TaskShape, bind_tasks, describe_stage, local_reader, plan_stage};

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
}
