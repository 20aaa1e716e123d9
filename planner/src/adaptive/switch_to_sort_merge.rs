//! Switching a shuffled hash join to a sort-merge join when its build side
//! does not fit in a task's memory.
//!
//! A hash join holds its whole build side in memory and cannot spill
//! (neither DataFusion's nor, before version 3, Spark's shuffled hash join;
//! Spark avoids the problem by making sort-merge its default for shuffled
//! joins). minispark plans shuffled hash joins, which are faster when the
//! build side fits, and checks that it does once the shuffle has been
//! written: when the largest partition of the build side, as measured, is
//! more than a task's share of its executor's memory (the smallest
//! `--memory / slots` of the live executors, with room for the hash
//! table: [`HASH_TABLE_EXPANSION`]), the stage runs the join as a
//! sort-merge join instead. Both sides are already hash-partitioned on the
//! join keys; each task sorts its two partitions (sorts spill) and merges
//! them, so no partition is ever held whole.
//!
//! ```text
//!   planned (build partition measured 40 MB, task share 16 MB)    switched
//!   HashJoinExec(Partitioned)                                     SortMergeJoinExec
//!     ├─ reader(left, hash)     build: held whole in memory        ├─ SortExec(left keys)  ─ reader(left)
//!     └─ reader(right, hash)                                      └─ SortExec(right keys) ─ reader(right)
//! ```
//!
//! Broadcast switches come first: a side small enough to broadcast fits.
//! Null-aware anti joins (`NOT IN`) have no sort-merge form and stay.

use std::sync::Arc;

use arrow::compute::SortOptions;
use datafusion::common::{Result, internal_err};
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::expressions::Column;
use datafusion::physical_plan::joins::{HashJoinExec, SortMergeJoinExec};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{ExecutionPlan, replace_children_if_necessary};

use super::switchable_join;
use crate::exchange::BlockLocation;
use crate::stages::StageJoin;

/// How many times its shuffle bytes a build partition is assumed to take
/// as a hash table: Arrow arrays decoded from IPC, plus the table of
/// hashes and row indices.
pub const HASH_TABLE_EXPANSION: u64 = 2;

/// A shuffled hash join run as a sort-merge join (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortMergeSwitch {
    /// The join's number in EXPLAIN's list of joins.
    pub join: usize,
    /// The largest build-side partition, in shuffle bytes.
    pub build_partition_bytes: u64,
    /// A task's share of its executor's memory.
    pub task_memory: u64,
}

/// Whether the stage's partitioned hash join must run as a sort-merge join
/// because the largest partition of its build (left) side, measured in
/// `readers[0]` (block lists per reduce partition), would not fit in
/// `task_memory`.
pub fn sort_merge_switch(
    stage_plan: &Arc<dyn ExecutionPlan>,
    join: Option<StageJoin>,
    readers: &[Vec<Vec<BlockLocation>>],
    task_memory: Option<u64>,
) -> Option<SortMergeSwitch> {
    let task_memory = task_memory?;
    let note = join?;
    switchable_join(stage_plan, readers)?;
    let build_partition_bytes = readers[0]
        .iter()
        .map(|blocks| blocks.iter().map(|b| b.bytes).sum::<u64>())
        .max()
        .unwrap_or(0);
    (build_partition_bytes.saturating_mul(HASH_TABLE_EXPANSION) > task_memory).then_some(
        SortMergeSwitch {
            join: note.number,
            build_partition_bytes,
            task_memory,
        },
    )
}

/// `plan` with its partitioned hash join replaced by a sort-merge join on
/// the same keys, each input sorted within its partition.
pub fn switch_to_sort_merge(
    plan: Arc<dyn ExecutionPlan>,
    switch: &SortMergeSwitch,
) -> Result<Arc<dyn ExecutionPlan>> {
    if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
        return sort_merge_join(join);
    }
    match plan.children().as_slice() {
        [only] => {
            let child = switch_to_sort_merge(Arc::clone(only), switch)?;
            replace_children_if_necessary(plan, vec![child])
        }
        _ => internal_err!(
            "join {} switched to sort-merge, but the stage has no join under {}",
            switch.join,
            plan.name()
        ),
    }
}

fn sort_merge_join(join: &HashJoinExec) -> Result<Arc<dyn ExecutionPlan>> {
    let options = SortOptions::default();
    let sorted = |input: &Arc<dyn ExecutionPlan>, keys: Vec<PhysicalSortExpr>| {
        let ordering = LexOrdering::new(keys).expect("a join has keys");
        Arc::new(SortExec::new(ordering, Arc::clone(input)).with_preserve_partitioning(true))
            as Arc<dyn ExecutionPlan>
    };
    let (left_keys, right_keys): (Vec<_>, Vec<_>) = join
        .on()
        .iter()
        .map(|(l, r)| {
            (
                PhysicalSortExpr::new(Arc::clone(l), options),
                PhysicalSortExpr::new(Arc::clone(r), options),
            )
        })
        .unzip();
    let merged: Arc<dyn ExecutionPlan> = Arc::new(SortMergeJoinExec::try_new(
        sorted(join.left(), left_keys),
        sorted(join.right(), right_keys),
        join.on().to_vec(),
        join.filter().cloned(),
        *join.join_type(),
        vec![options; join.on().len()],
        join.null_equality(),
    )?);
    // The hash join may have projected its output: the same columns.
    let Some(projection) = &join.projection else {
        return Ok(merged);
    };
    let schema = merged.schema();
    let exprs: Vec<(Arc<dyn datafusion::physical_expr::PhysicalExpr>, String)> = projection
        .iter()
        .map(|&i| {
            let name = schema.field(i).name().clone();
            (Arc::new(Column::new(&name, i)) as _, name)
        })
        .collect();
    Ok(Arc::new(ProjectionExec::try_new(exprs, merged)?))
}

#[cfg(test)]
mod tests {
    use datafusion::common::JoinType;

    use super::*;
    use crate::adaptive::fixtures::*;

    #[test]
    fn a_build_side_over_the_task_share_switches_to_sort_merge() {
        let stage = join_stage(JoinType::Inner);
        // Left: each partition 2 maps x 1000 bytes = 2000; x2 = 4000 bytes.
        let readers = sides(1000, 10);
        assert_eq!(
            sort_merge_switch(&stage, JOIN, &readers, Some(3999)),
            Some(SortMergeSwitch {
                join: 3,
                build_partition_bytes: 2000,
                task_memory: 3999
            })
        );
        assert_eq!(sort_merge_switch(&stage, JOIN, &readers, Some(4000)), None);
        assert_eq!(sort_merge_switch(&stage, JOIN, &readers, None), None);

        let switch = sort_merge_switch(&stage, JOIN, &readers, Some(100)).unwrap();
        let switched = switch_to_sort_merge(stage.clone(), &switch).unwrap();
        let text = datafusion::physical_plan::displayable(switched.as_ref())
            .indent(true)
            .to_string();
        assert!(text.contains("SortMergeJoin"), "{text}");
        assert!(!text.contains("HashJoinExec"), "{text}");
        assert_eq!(text.matches("SortExec").count(), 2, "{text}");
        assert_eq!(switched.schema(), stage.schema());
    }
}
