//! Switching a shuffled hash join to a sort-merge join when its build side
//! does not fit in a task's memory.
//!
//! A hash join holds its whole build side in memory and cannot spill
//! (neither DataFusion's nor, before version 3, Spark's shuffled hash join;
//! Spark avoids the problem by making sort-merge its default for shuffled
//! joins). minispark plans shuffled hash joins, which are faster when the
//! build side fits, and checks that it does once the shuffle has been
//! written: when the largest partition of the build side, as measured and
//! estimated as a hash table ([`hash_table_bytes`]), is more than a task's
//! share of its executor's memory (the smallest `--memory / slots` of the
//! live executors: a task cannot count on its executor's other slots
//! staying idle), the stage runs the join as a sort-merge join instead. Where the estimate falls short, the attempt
//! that runs out of memory makes the stage's later attempts sort-merge
//! joins ([`sort_merge_after_out_of_memory`]). Both sides are already hash-partitioned on the
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
//! Every partitioned hash join of a stage is checked, also one whose build
//! side is computed in the stage by another join of the same partitions
//! (TPC-H q21 joins three shuffles on `l_orderkey` in one stage); its build
//! side is estimated as all the shuffled bytes under it.
//!
//! Broadcast switches come first: a side small enough to broadcast fits.
//! Null-aware anti joins (`NOT IN`) have no sort-merge form and stay.

use std::sync::Arc;

use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, Schema};
use datafusion::common::{Result, internal_err};
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::expressions::Column;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode, SortMergeJoinExec};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{ExecutionPlan, replace_children_if_necessary};

use crate::exchange::{BlockLocation, ExchangeKind, ShuffleReaderExec};
use crate::stages::{StageJoin, collect_readers};

/// How many times its shuffle bytes a build partition is assumed to take
/// as a hash table at least: Arrow arrays decoded from compressed IPC.
pub const HASH_TABLE_EXPANSION: u64 = 2;

/// Bytes a hash table takes per build row beyond the row's columns:
/// DataFusion's join hash map keeps a hash and a row index per row in a
/// hash table with spare capacity, and a link to the next row of equal
/// hash.
pub const HASH_TABLE_ROW_BYTES: u64 = 24;

/// The memory a hash join's build side of `bytes` shuffle bytes and `rows`
/// rows of `schema` is expected to take: whichever is larger of
/// [`HASH_TABLE_EXPANSION`] times its bytes and its rows at their decoded
/// width plus [`HASH_TABLE_ROW_BYTES`] each. Rows matter where shuffle
/// bytes deceive: narrow rows of integers compress well but each still
/// costs a slot in the table.
pub fn hash_table_bytes(bytes: u64, rows: u64, schema: &Schema) -> u64 {
    let width: u64 = schema
        .fields()
        .iter()
        .map(|f| decoded_width(f.data_type()))
        .sum();
    bytes
        .saturating_mul(HASH_TABLE_EXPANSION)
        .max(rows.saturating_mul(width + HASH_TABLE_ROW_BYTES))
}

/// Bytes one value of `data_type` takes in an Arrow array at least (a
/// variable-length value: its offset or view).
fn decoded_width(data_type: &DataType) -> u64 {
    match data_type {
        DataType::Boolean | DataType::Null => 1,
        DataType::Utf8 | DataType::Binary | DataType::List(_) => 4,
        DataType::Utf8View | DataType::BinaryView => 16,
        t => t.primitive_width().unwrap_or(8) as u64,
    }
}

/// Shuffled hash joins of a stage run as sort-merge joins (see the module
/// docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortMergeSwitch {
    /// The stage's join's number in EXPLAIN's list of joins (its outermost
    /// partitioned hash join).
    pub join: usize,
    /// The switched joins, by their place among the stage's partitioned
    /// hash joins in plan order (0 is the outermost).
    pub switched: Vec<usize>,
    /// The largest build-side partition of a switched join: shuffle bytes,
    /// rows, and the memory it would take as a hash table
    /// ([`hash_table_bytes`]).
    pub build_partition_bytes: u64,
    pub build_partition_rows: u64,
    pub hash_table_bytes: u64,
    /// A task's share of its executor's memory.
    pub task_memory: u64,
    /// Switched because a task of the stage ran out of memory building a
    /// hash table, not from the measured sizes (see
    /// [`sort_merge_after_out_of_memory`]).
    pub after_out_of_memory: bool,
}

/// Every partitioned hash join of the stage that has a sort-merge form,
/// switched because a task of the stage ran out of memory building a hash
/// table: the estimate said it would fit, the executor said otherwise (its
/// other tasks held memory too, or the rows were wider than measured). The
/// stage's later attempts run the sort-merge joins, which spill; outputs
/// its tasks already wrote stay valid, as both joins give the same rows.
/// `None` when the stage has no such join.
pub fn sort_merge_after_out_of_memory(
    stage_plan: &Arc<dyn ExecutionPlan>,
    join: Option<StageJoin>,
) -> Option<SortMergeSwitch> {
    let mut switched = vec![];
    let mut place = 0;
    visit_partitioned_joins(stage_plan, &mut |join| {
        if has_sort_merge_form(join) {
            switched.push(place);
        }
        place += 1;
    });
    (!switched.is_empty()).then_some(SortMergeSwitch {
        join: join.map_or(0, |j| j.number),
        switched,
        build_partition_bytes: 0,
        build_partition_rows: 0,
        hash_table_bytes: 0,
        task_memory: 0,
        after_out_of_memory: true,
    })
}

/// Which partitioned hash joins of the stage must run as sort-merge joins
/// because the largest partition of their build (left) side would not fit
/// in `task_memory`. `readers` are the stage's hash readers' block lists
/// per reduce partition, in [`collect_readers`] order; `task_partitions`
/// the reduce partitions each task reads (coalesced partitions make one
/// hash table), or empty for one task per partition.
///
/// A build side read straight from a shuffle is measured exactly. A build
/// side that is itself computed in the stage (the output of another join
/// of the same reduce partition, as in TPC-H q21, where three joins on
/// `l_orderkey` share one stage) is estimated as every shuffled byte under
/// it in that partition: a join of such inputs rarely outgrows them, and
/// when a key multiplies rows the sort-merge join spills where a hash
/// table could not.
pub fn sort_merge_switch(
    stage_plan: &Arc<dyn ExecutionPlan>,
    join: Option<StageJoin>,
    readers: &[Vec<Vec<BlockLocation>>],
    task_partitions: &[Vec<usize>],
    task_memory: Option<u64>,
) -> Option<SortMergeSwitch> {
    let task_memory = task_memory?;
    let note = join?;
    // Hash readers in collect_readers order, as `readers` lists them.
    let mut hash_readers: Vec<*const ShuffleReaderExec> = vec![];
    collect_readers(stage_plan, &mut |r| {
        if r.kind() == ExchangeKind::Hash {
            hash_readers.push(r as *const _);
        }
    });
    if hash_readers.len() != readers.len() {
        return None;
    }
    let mut switched = vec![];
    // (hash table bytes, shuffle bytes, rows) of the largest build side.
    let mut largest = (0, 0, 0);
    let mut place = 0;
    visit_partitioned_joins(stage_plan, &mut |join| {
        let here = place;
        place += 1;
        if !has_sort_merge_form(join) {
            return;
        }
        let mut under = vec![];
        collect_readers(join.left(), &mut |r| {
            if let Some(i) = hash_readers.iter().position(|h| std::ptr::eq(*h, r)) {
                under.push(i);
            }
        });
        let partitions = under.iter().map(|&i| readers[i].len()).max().unwrap_or(0);
        let each_alone: Vec<Vec<usize>>;
        let groups = if task_partitions.is_empty() {
            each_alone = (0..partitions).map(|p| vec![p]).collect();
            &each_alone
        } else {
            task_partitions
        };
        let schema = join.left().schema();
        let build = groups
            .iter()
            .map(|group| {
                let blocks = || {
                    group
                        .iter()
                        .flat_map(|&p| under.iter().filter_map(move |&i| readers[i].get(p)))
                        .flatten()
                };
                let bytes = blocks().map(|b| b.bytes).sum::<u64>();
                let rows = blocks().map(|b| b.rows).sum::<u64>();
                (hash_table_bytes(bytes, rows, &schema), bytes, rows)
            })
            .max()
            .unwrap_or_default();
        if build.0 > task_memory {
            switched.push(here);
            largest = largest.max(build);
        }
    });
    (!switched.is_empty()).then_some(SortMergeSwitch {
        join: note.number,
        switched,
        build_partition_bytes: largest.1,
        build_partition_rows: largest.2,
        hash_table_bytes: largest.0,
        task_memory,
        after_out_of_memory: false,
    })
}

/// Whether `join` may run as a sort-merge join: NOT IN (null-aware) has no
/// sort-merge form, and a join whose output is ordered may feed an
/// operator that relies on that order.
fn has_sort_merge_form(join: &HashJoinExec) -> bool {
    !join.null_aware && join.properties().output_ordering().is_none()
}

/// Calls `f` on each partitioned hash join of `plan`, in plan order.
fn visit_partitioned_joins(plan: &Arc<dyn ExecutionPlan>, f: &mut dyn FnMut(&HashJoinExec)) {
    if let Some(join) = plan.downcast_ref::<HashJoinExec>()
        && *join.partition_mode() == PartitionMode::Partitioned
    {
        f(join);
    }
    for child in plan.children() {
        visit_partitioned_joins(child, f);
    }
}

/// `plan` with the partitioned hash joins `switch` names replaced by
/// sort-merge joins on the same keys, each input sorted within its
/// partition.
pub fn switch_to_sort_merge(
    plan: Arc<dyn ExecutionPlan>,
    switch: &SortMergeSwitch,
) -> Result<Arc<dyn ExecutionPlan>> {
    let mut place = 0;
    let switched = replace_joins(plan, &switch.switched, &mut place)?;
    if place <= switch.switched.iter().copied().max().unwrap_or(0) {
        return internal_err!(
            "join {} switched to sort-merge, but the stage has only {place} partitioned hash joins",
            switch.join
        );
    }
    Ok(switched)
}

/// [`switch_to_sort_merge`] below `plan`, `place` counting the partitioned
/// hash joins met so far in plan order.
fn replace_joins(
    plan: Arc<dyn ExecutionPlan>,
    switched: &[usize],
    place: &mut usize,
) -> Result<Arc<dyn ExecutionPlan>> {
    let mut this = None;
    if let Some(join) = plan.downcast_ref::<HashJoinExec>()
        && *join.partition_mode() == PartitionMode::Partitioned
    {
        this = Some(*place);
        *place += 1;
    }
    let children = plan
        .children()
        .into_iter()
        .map(|c| replace_joins(Arc::clone(c), switched, place))
        .collect::<Result<Vec<_>>>()?;
    let plan = if children.is_empty() {
        plan
    } else {
        replace_children_if_necessary(plan, children)?
    };
    match (this, plan.downcast_ref::<HashJoinExec>()) {
        (Some(p), Some(join)) if switched.contains(&p) => sort_merge_join(join),
        _ => Ok(plan),
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
        // Left: each partition 2 maps x 1000 bytes (and rows) = 2000; two
        // Int64 columns: 2000 x (16 + 24) = 80000 bytes as a hash table.
        let readers = sides(1000, 10);
        assert_eq!(
            sort_merge_switch(&stage, JOIN, &readers, &[], Some(79_999)),
            Some(SortMergeSwitch {
                join: 3,
                switched: vec![0],
                build_partition_bytes: 2000,
                build_partition_rows: 2000,
                hash_table_bytes: 80_000,
                task_memory: 79_999,
                after_out_of_memory: false,
            })
        );
        assert_eq!(
            sort_merge_switch(&stage, JOIN, &readers, &[], Some(80_000)),
            None
        );
        assert_eq!(sort_merge_switch(&stage, JOIN, &readers, &[], None), None);
        // Two partitions coalesced into one task make one hash table of
        // both: 160000 bytes.
        let coalesced = [vec![0, 1], vec![2, 3]];
        let switch = sort_merge_switch(&stage, JOIN, &readers, &coalesced, Some(80_000)).unwrap();
        assert_eq!(switch.hash_table_bytes, 160_000);
        assert_eq!(switch.build_partition_rows, 4000);

        let switch = sort_merge_switch(&stage, JOIN, &readers, &[], Some(100)).unwrap();
        let switched = switch_to_sort_merge(stage.clone(), &switch).unwrap();
        let text = datafusion::physical_plan::displayable(switched.as_ref())
            .indent(true)
            .to_string();
        assert!(text.contains("SortMergeJoin"), "{text}");
        assert!(!text.contains("HashJoinExec"), "{text}");
        assert_eq!(text.matches("SortExec").count(), 2, "{text}");
        assert_eq!(switched.schema(), stage.schema());
    }

    /// Three shuffles joined on one key in one stage (as TPC-H q21's
    /// `l_orderkey` joins are): the outer join's build side is the inner
    /// join's output, measured as the bytes read under it.
    #[test]
    fn a_build_side_computed_by_another_join_of_the_stage_is_measured_by_its_inputs() {
        use arrow::datatypes::{DataType, Field, Schema};
        use datafusion::common::NullEquality;
        use datafusion::physical_expr::{Partitioning, PhysicalExpr};

        use crate::adaptive::{StageShape, describe_stage};
        use crate::exchange::ShuffleWriterExec;

        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let k: Arc<dyn PhysicalExpr> = Arc::new(Column::new("k", 0));
        let reader = |stage| -> Arc<dyn ExecutionPlan> {
            Arc::new(ShuffleReaderExec::new_unordered(
                stage,
                ExchangeKind::Hash,
                Partitioning::Hash(vec![Arc::clone(&k)], 4),
                Arc::clone(&schema),
            ))
        };
        let join = |left, right| -> Arc<dyn ExecutionPlan> {
            Arc::new(
                HashJoinExec::try_new(
                    left,
                    right,
                    vec![(Arc::clone(&k), Arc::clone(&k))],
                    None,
                    &JoinType::Inner,
                    None,
                    PartitionMode::Partitioned,
                    NullEquality::NullEqualsNothing,
                    false,
                )
                .unwrap(),
            )
        };
        let inner = join(reader(0), reader(1));
        let outer = join(inner, reader(2));
        let stage: Arc<dyn ExecutionPlan> = Arc::new(
            ShuffleWriterExec::try_new(3, outer, ExchangeKind::Hash, 4, vec![Arc::clone(&k)])
                .unwrap(),
        );
        // Per partition: 2 maps x 600 bytes under the inner join's build
        // side, 2 x 10 beside it, 2 x 10 for the outer probe side.
        let readers = vec![reader_blocks(600), reader_blocks(10), reader_blocks(10)];
        // Outer build: 1220 rows of four Int64 columns, 1220 x (32 + 24) =
        // 68320 bytes > 48000; inner build: 1200 x (16 + 24) = 48000 fits.
        let only_outer = sort_merge_switch(&stage, JOIN, &readers, &[], Some(48_000)).unwrap();
        assert_eq!(only_outer.switched, vec![0]);
        assert_eq!(only_outer.build_partition_bytes, 1220);
        assert_eq!(only_outer.hash_table_bytes, 68_320);
        let text = |plan: &Arc<dyn ExecutionPlan>| {
            datafusion::physical_plan::displayable(plan.as_ref())
                .indent(true)
                .to_string()
        };
        let switched = switch_to_sort_merge(stage.clone(), &only_outer).unwrap();
        let shown = text(&switched);
        assert_eq!(shown.matches("SortMergeJoin").count(), 1, "{shown}");
        assert_eq!(shown.matches("HashJoinExec").count(), 1, "{shown}");
        // The sort-merge join is the outer one: the hash join is under it.
        assert!(
            shown.find("SortMergeJoin").unwrap() < shown.find("HashJoinExec").unwrap(),
            "{shown}"
        );

        let both = sort_merge_switch(&stage, JOIN, &readers, &[], Some(47_999)).unwrap();
        assert_eq!(both.switched, vec![0, 1]);
        let switched = switch_to_sort_merge(stage.clone(), &both).unwrap();
        let shown = text(&switched);
        assert_eq!(shown.matches("SortMergeJoin").count(), 2, "{shown}");
        assert!(!shown.contains("HashJoinExec"), "{shown}");
        assert_eq!(shown.matches("SortExec").count(), 4, "{shown}");
        assert_eq!(switched.schema(), stage.schema());
        assert!(
            describe_stage(
                4,
                &StageShape {
                    tasks: vec![],
                    broadcast: None,
                    sort_merge: Some(both),
                }
            )
            .unwrap()
            .contains("join 3 and 1 joins under it switched to sort-merge")
        );

        assert_eq!(
            sort_merge_switch(&stage, JOIN, &readers, &[], Some(68_320)),
            None
        );
    }

    #[test]
    fn a_stage_whose_task_ran_out_of_memory_switches_every_hash_join() {
        let stage = join_stage(JoinType::Inner);
        let switch = sort_merge_after_out_of_memory(&stage, JOIN).unwrap();
        assert_eq!(switch.switched, vec![0]);
        assert!(switch.after_out_of_memory);
        let switched = switch_to_sort_merge(stage.clone(), &switch).unwrap();
        let text = datafusion::physical_plan::displayable(switched.as_ref())
            .indent(true)
            .to_string();
        assert!(
            text.contains("SortMergeJoin") && !text.contains("HashJoinExec"),
            "{text}"
        );
        let described = crate::adaptive::describe_stage(
            4,
            &crate::adaptive::StageShape {
                tasks: vec![],
                broadcast: None,
                sort_merge: Some(switch),
            },
        )
        .unwrap();
        assert!(
            described.contains("join 3 switched to sort-merge after a task ran out of memory"),
            "{described}"
        );
    }

    #[test]
    fn narrow_rows_are_measured_by_their_count_wide_ones_by_their_bytes() {
        use arrow::datatypes::Field;
        let ints = Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("s", DataType::Int32, false),
        ]);
        // 1000 rows in 2000 compressed bytes: 1000 x (12 + 24).
        assert_eq!(hash_table_bytes(2000, 1000, &ints), 36_000);
        let text = Schema::new(vec![Field::new("t", DataType::Utf8, false)]);
        // 10 rows of long strings: twice the bytes.
        assert_eq!(hash_table_bytes(50_000, 10, &text), 100_000);
    }

    fn reader_blocks(bytes: u64) -> Vec<Vec<BlockLocation>> {
        reader(2, &[bytes; 4])
    }
}
