//! Runtime filters: dropping a shuffle's rows that no join partner wants,
//! before they are shuffled (Spark's `InjectRuntimeFilter`, in its
//! semi-join reduction form).
//!
//! A shuffled join moves both its sides whole, although in many joins most
//! rows of the big side find no partner on the small one. Worst are the
//! joins that must emit their small side's unmatched rows (LEFT, LEFT
//! SEMI, LEFT ANTI, the EXISTS of a `LEFT MARK`): they cannot broadcast that
//! side, however small. TPC-H q4 shuffles 3.8 M lineitem rows to meet the
//! 57 k orders of one quarter; q22 shuffles all 1.5 M orders to look for
//! the 42 k customers it keeps.
//!
//! A runtime filter stops that: the big side's map stage first waits for
//! the small side's map stage, reads all of its output as a broadcast, and
//! keeps only the rows whose join keys are among the small side's keys.
//! What is dropped could not have met a partner, so the join gives the
//! same answer; what is left is shuffled as planned.
//!
//! ```text
//!  without                                   with a runtime filter
//!  stage 0: orders (57 k) ──hash──┐          stage 0: orders (57 k) ──hash──┬────────────┐
//!  stage 1: lineitem (3.8 M) ─hash┴▶ join    stage 1: lineitem (3.8 M)      ▼            │
//!                                                 └▶ keep l_orderkey ∈ keys(stage 0)     │
//!                                                      (150 k) ──hash──────────────────▶ join
//! ```
//!
//! A broadcast join's keys filter the same way the stages under its probe
//! side whose rows carry the probe key ([`column_origins`]): in TPC-H q18
//! the nine orders of `o_orderkey IN (SELECT l_orderkey ... HAVING
//! sum(l_quantity) > 313)` are a broadcast RIGHT SEMI join's build side,
//! applied after the shuffled join of orders with all 6 M lineitems; the
//! nine keys now filter that lineitem scan (and the orders scan) before
//! their shuffle. In q7 the two nations of a broadcast join near the top
//! filter the supplier scan three joins below it, and through the suppliers
//! the lineitems. That is what DataFusion's dynamic filters do inside one
//! process.
//!
//! The filter is a hash join in the big side's map stage: `RightSemi`,
//! built from the small side's join keys (one hash table per executor,
//! shared by its tasks, see `minispark_executor::broadcast_hash_table`),
//! probed by every row before the shuffle writer. It keeps NULL keys only
//! when the join itself matches NULL with NULL.
//!
//! When: the stage cutter notes every shuffled hash join, and every
//! broadcast INNER / RIGHT SEMI join, as candidates: for a shuffled join,
//! one per side whose unmatched rows the join type never emits (never for a
//! FULL or a null-aware anti join), filtered by the other side when that
//! side filters its own rows (a `FilterExec`: a whole dimension table
//! joined on a foreign key would keep every row; Spark asks for a selective
//! filter too), and also by each stage under that side that holds all of
//! its keys (`Follow::Superset`), in case the side is estimated too big and
//! they are not: in q21 an `EXISTS` join DataFusion estimates at 90 MiB
//! (it measures 3.6 MB) is replaced by the lineitems of one nation's
//! suppliers under it. [`plant_runtime_filters`] plants
//! a candidate when its creation side is a broadcast (small by the
//! planner's choice) or is *estimated* small (below
//! `minispark.sql.runtimeFilter.creationSideThreshold`, Spark's
//! `spark.sql.optimizer.runtime.bloomFilter.creationSideThreshold`, 10 MB;
//! -1 plants none), the side it filters is estimated bigger (its bytes
//! known), and that side's stage reads only scans (a stage reading shuffles
//! keeps its own adaptive execution as it is). Waiting costs the overlap of
//! the two map stages, and a filter whose small side *measures* big would
//! cost more than it saves: it is dropped when the stage is bound
//! ([`keeps_filter`], [`without_runtime_filter`]). Spark probes a Bloom
//! filter; minispark's filter is exact (a hash table of the keys of a side
//! that measured at most that many shuffle bytes), so no row is shuffled
//! for a false positive.

use std::sync::Arc;

use datafusion::common::{JoinSide, JoinType, NullEquality, Result, internal_err};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{ExecutionPlan, replace_children_if_necessary};

use crate::exchange::{ExchangeKind, ShuffleReaderExec};
use crate::explain::fmt_bytes;
use crate::join_strategy::SizeEstimate;
use crate::stages::{Stage, StageGraph, collect_readers};

/// A runtime filter on a stage's rows: keep those whose
/// `application_keys` are among the `creation_keys` of another stage's
/// output.
#[derive(Debug, Clone)]
pub struct RuntimeFilter {
    /// The join it serves, by its number in EXPLAIN's list of joins.
    pub join: usize,
    /// The stage whose rows are filtered (the join's big side, or an
    /// input of the shuffled join under a broadcast join).
    pub application_stage: usize,
    /// The stage whose keys filter them (the join's small side).
    pub creation_stage: usize,
    /// The join keys over the creation stage's output.
    pub creation_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// The keys equal to them over the filtered stage's rows.
    pub application_keys: Vec<Arc<dyn PhysicalExpr>>,
    pub null_equality: NullEquality,
    /// What the planner estimated of the creation side and of the rows
    /// filtered: a filter is planted when the first is small and the
    /// second bigger.
    pub creation_estimate: SizeEstimate,
    pub application_estimate: SizeEstimate,
    /// The creation side is a broadcast join's build side: the planner
    /// already chose it as small (its estimate may be unknown, an
    /// aggregate's).
    pub creation_broadcast: bool,
    /// The creation side's measured bytes above which the filter is
    /// dropped (set when planted).
    pub threshold: u64,
}

impl RuntimeFilter {
    /// Whether a join of this type may drop right-side rows without a
    /// partner on the left: those whose unmatched right rows are never
    /// emitted.
    pub fn filters_right_side(join_type: &JoinType) -> bool {
        matches!(
            join_type,
            JoinType::Inner
                | JoinType::Left
                | JoinType::LeftSemi
                | JoinType::LeftAnti
                | JoinType::LeftMark
                | JoinType::RightSemi
        )
    }

    /// Whether a join of this type may drop left-side rows without a
    /// partner on the right.
    pub fn filters_left_side(join_type: &JoinType) -> bool {
        matches!(
            join_type,
            JoinType::Inner
                | JoinType::Right
                | JoinType::RightSemi
                | JoinType::RightAnti
                | JoinType::RightMark
                | JoinType::LeftSemi
        )
    }

    /// One line for EXPLAIN, under the filtered stage's header.
    pub fn describe(&self) -> String {
        let keys = |k: &[Arc<dyn PhysicalExpr>]| {
            k.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "runtime filter (join {}): rows shuffled only when [{}] is among stage {}'s [{}], \
             if stage {} measures at most {}",
            self.join,
            keys(&self.application_keys),
            self.creation_stage,
            keys(&self.creation_keys),
            self.creation_stage,
            fmt_bytes(self.threshold),
        )
    }

    /// One line for EXPLAIN ANALYZE: what became of the filter once the
    /// creation side measured `bytes` in `rows` rows.
    pub fn describe_decision(&self, bytes: u64, rows: u64) -> String {
        let (what, compared) = match keeps_filter(self, bytes) {
            true => ("kept", "<="),
            false => ("dropped", ">"),
        };
        format!(
            "runtime filter: {what}; stage {} measured {} in {rows} rows {compared} {}",
            self.creation_stage,
            fmt_bytes(bytes),
            fmt_bytes(self.threshold)
        )
    }
}

/// Whether a filter is kept once its creation side measured `bytes`.
pub fn keeps_filter(filter: &RuntimeFilter, bytes: u64) -> bool {
    bytes <= filter.threshold
}

/// Rows a creation side may be estimated at when its bytes are unknown
/// (DataFusion's `hash_join_single_partition_threshold_rows`).
const CREATION_SIDE_ROWS: usize = 128 * 1024;

/// Plants the cutter's candidate filters (`graph.runtime_filter_candidates`)
/// in their stages, unless `threshold` is `None` (the setting is -1). A
/// candidate is planted when its creation side is a broadcast or is
/// estimated below `threshold` bytes (or 128 Ki rows when its bytes are
/// unknown), the rows it filters are estimated bigger (their bytes known),
/// and their stage reads only scans; that stage then also reads the
/// creation stage. A stage gets one filter.
pub fn plant_runtime_filters(graph: &mut StageGraph, threshold: Option<u64>) -> Result<()> {
    let candidates = std::mem::take(&mut graph.runtime_filter_candidates);
    let Some(threshold) = threshold else {
        return Ok(());
    };
    let small = (
        usize::try_from(threshold).unwrap_or(usize::MAX),
        CREATION_SIDE_ROWS,
    );
    for mut filter in candidates {
        let known_bigger = filter.application_estimate.bytes.is_some()
            && (filter.creation_broadcast
                || filter
                    .application_estimate
                    .is_bigger_than(&filter.creation_estimate));
        let small_enough =
            filter.creation_broadcast || filter.creation_estimate.is_broadcastable(small);
        if !small_enough || !known_bigger {
            continue;
        }
        let (app, creation) = (filter.application_stage, filter.creation_stage);
        if app >= graph.stages.len() || creation >= graph.stages.len() {
            return internal_err!("a runtime filter names a stage that is not in the graph");
        }
        let mut reads_shuffles = false;
        collect_readers(&graph.stages[app].plan, &mut |_| reads_shuffles = true);
        if reads_shuffles
            || graph.stages[app].runtime_filter.is_some()
            || depends_on(graph, creation, app)
        {
            continue;
        }
        filter.threshold = threshold;
        let creation_schema = graph.stages[creation].writer().input().schema();
        let writer = graph.stages[app].writer();
        let rows = Arc::clone(writer.input());
        // The creation side's keys only: the hash table holds nothing else.
        let reader: Arc<dyn ExecutionPlan> = Arc::new(ShuffleReaderExec::new(
            creation,
            ExchangeKind::Broadcast,
            Partitioning::UnknownPartitioning(1),
            EquivalenceProperties::new(Arc::clone(&creation_schema)),
        ));
        let keys: Vec<(Arc<dyn PhysicalExpr>, String)> = filter
            .creation_keys
            .iter()
            .enumerate()
            .map(|(i, k)| (Arc::clone(k), format!("runtime_filter_key_{i}")))
            .collect();
        let on = keys
            .iter()
            .enumerate()
            .zip(&filter.application_keys)
            .map(|((i, (_, name)), right)| {
                (
                    Arc::new(Column::new(name, i)) as Arc<dyn PhysicalExpr>,
                    Arc::clone(right),
                )
            })
            .collect();
        let build: Arc<dyn ExecutionPlan> = Arc::new(ProjectionExec::try_new(keys, reader)?);
        let semi: Arc<dyn ExecutionPlan> = Arc::new(HashJoinExec::try_new(
            build,
            rows,
            on,
            None,
            &JoinType::RightSemi,
            None,
            PartitionMode::CollectLeft,
            filter.null_equality,
            false,
        )?);
        let plan = replace_children_if_necessary(Arc::clone(&graph.stages[app].plan), vec![semi])?;
        let stage = &mut graph.stages[app];
        stage.plan = plan;
        stage.inputs.push(creation);
        stage.runtime_filter = Some(filter);
    }
    Ok(())
}

/// How [`column_origins`] follows a column down a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follow {
    /// To rows that may be dropped when their value is not among a join's
    /// keys, the join dropping them anyway: the application side of a
    /// filter.
    Dropped,
    /// To rows whose values include every value of the column: a stage
    /// whose keys may build a filter in place of the column's own stage.
    Superset,
}

/// The stages whose rows carry column `index` of `plan`'s output, each with
/// the column's index among the rows its writer shuffles, a stage before
/// the stages under it.
///
/// With [`Follow::Dropped`], `plan` is the probe side of a broadcast INNER
/// or RIGHT SEMI join on that column: rows whose value there is not among
/// the join's keys may be dropped in the stages named, before they are
/// shuffled. With [`Follow::Superset`], the stages named hold every value
/// the column takes (and maybe more): their keys may filter in the place
/// of `plan`'s own, and they are ready sooner.
///
/// The column is followed down through operators that pass it on row by
/// row (projections, filters, sorts and merges, the group keys of an
/// aggregate, the preserved side of a join; none with a limit) and into the stage
/// behind each shuffle reader it comes out of, naming that stage. An
/// equi-join key is
/// followed into both sides: when dropping, the rows of the other side with
/// a value not among the keys meet only rows that are dropped above (never
/// into a `NOT IN` or a mark join's other side, where one NULL row decides
/// for every key); for a superset, through INNER and SEMI joins only (an
/// ANTI join's output keys are those the other side lacks). TPC-H q7: the two nations' keys, a
/// broadcast join's build side near the top of the plan, reach the supplier
/// scan three joins below.
pub(crate) fn column_origins(
    stages: &[Stage],
    plan: &Arc<dyn ExecutionPlan>,
    index: usize,
    how: Follow,
    out: &mut Vec<(usize, usize)>,
) {
    // A limit keeps the first rows it sees: dropping rows under it would
    // let others in.
    if plan.fetch().is_some()
        || plan
            .downcast_ref::<AggregateExec>()
            .is_some_and(|a| a.limit_options().is_some())
    {
        return;
    }
    let mut follow = |child: &Arc<dyn ExecutionPlan>, i: usize| {
        column_origins(stages, child, i, how, out);
    };
    if let Some(reader) = plan.downcast_ref::<ShuffleReaderExec>() {
        let Some(stage) = stages.get(reader.stage_id()) else {
            return;
        };
        out.push((stage.id, index));
        column_origins(stages, stage.writer().input(), index, how, out);
    } else if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        if let Some(column) = projection
            .expr()
            .get(index)
            .and_then(|e| e.expr.downcast_ref::<Column>())
        {
            follow(projection.input(), column.index());
        }
    } else if let Some(filter) = plan.downcast_ref::<FilterExec>() {
        if let Some(i) = projected(filter.projection().as_deref(), index) {
            follow(filter.input(), i);
        }
    } else if let Some(sort) = plan.downcast_ref::<SortExec>() {
        follow(sort.input(), index);
    } else if let Some(merge) = plan.downcast_ref::<CoalescePartitionsExec>() {
        follow(merge.input(), index);
    } else if let Some(repartition) = plan.downcast_ref::<RepartitionExec>() {
        follow(repartition.input(), index);
    } else if let Some(aggregate) = plan.downcast_ref::<AggregateExec>() {
        let groups = aggregate.group_expr();
        if groups.is_single()
            && let Some(column) = groups
                .expr()
                .get(index)
                .and_then(|(e, _)| e.downcast_ref::<Column>())
        {
            follow(aggregate.input(), column.index());
        }
    } else if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
        let Some(index) = projected(join.projection.as_deref(), index) else {
            return;
        };
        let left_width = join.left().schema().fields().len();
        // Which side the column comes from, when that side's rows are
        // emitted as they are (never a FULL join's, nor an outer join's
        // null-supplying side).
        let (side, i) = match join.join_type() {
            JoinType::Inner if index < left_width => (JoinSide::Left, index),
            JoinType::Inner => (JoinSide::Right, index - left_width),
            JoinType::Left | JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark
                if index < left_width =>
            {
                (JoinSide::Left, index)
            }
            JoinType::Right => match index.checked_sub(left_width) {
                Some(i) => (JoinSide::Right, i),
                None => return,
            },
            JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => {
                (JoinSide::Right, index)
            }
            _ => return,
        };
        let (this, other) = match side {
            JoinSide::Left => (join.left(), join.right()),
            _ => (join.right(), join.left()),
        };
        if i >= this.schema().fields().len() {
            return; // a mark column
        }
        follow(this, i);
        let is_column = |e: &Arc<dyn PhysicalExpr>| e.downcast_ref::<Column>().map(|c| c.index());
        let partner = join.on().iter().find_map(|(l, r)| {
            let (mine, theirs) = match side {
                JoinSide::Left => (l, r),
                _ => (r, l),
            };
            (is_column(mine) == Some(i))
                .then(|| is_column(theirs))
                .flatten()
        });
        // Never into a NOT IN (null-aware) or a mark join's other side: a
        // NULL there decides the rows of every key, and the filter drops it.
        let branches = !join.null_aware
            && match how {
                Follow::Dropped => {
                    !matches!(join.join_type(), JoinType::LeftMark | JoinType::RightMark)
                }
                Follow::Superset => matches!(
                    join.join_type(),
                    JoinType::Inner | JoinType::LeftSemi | JoinType::RightSemi
                ),
            };
        if let Some(partner) = partner
            && branches
            && join.null_equality() == NullEquality::NullEqualsNothing
        {
            follow(other, partner);
        }
    }
}

/// Index `index` of an operator's output as an index of its input, through
/// its optional projection.
fn projected(projection: Option<&[usize]>, index: usize) -> Option<usize> {
    match projection {
        Some(p) => p.get(index).copied(),
        None => Some(index),
    }
}

/// Whether stage `stage` is, or reads (through any number of stages), stage
/// `other`: a filter created there cannot wait for it.
fn depends_on(graph: &StageGraph, stage: usize, other: usize) -> bool {
    let mut todo = vec![stage];
    let mut seen = vec![false; graph.stages.len()];
    while let Some(s) = todo.pop() {
        if s == other {
            return true;
        }
        if let Some(seen) = seen.get_mut(s)
            && !std::mem::replace(seen, true)
        {
            todo.extend(&graph.stages[s].inputs);
        }
    }
    false
}

/// A filtered stage's plan without its runtime filter: the shuffle writer
/// over the rows the filter would have probed.
pub fn without_runtime_filter(plan: &Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    let children = plan.children();
    let Some(semi) = children
        .first()
        .and_then(|c| c.downcast_ref::<HashJoinExec>())
        .filter(|j| *j.join_type() == JoinType::RightSemi)
    else {
        return internal_err!("a stage with a runtime filter has no filter under its writer");
    };
    replace_children_if_necessary(Arc::clone(plan), vec![Arc::clone(semi.right())])
}

#[cfg(test)]
mod tests {
    use datafusion::physical_plan::displayable;

    use super::*;
    use crate::stages::tests::tpch_graph as graph;

    fn text(plan: &Arc<dyn ExecutionPlan>) -> String {
        displayable(plan.as_ref()).indent(false).to_string()
    }

    /// Suppliers of one nation with a part in stock: q4's shape (EXISTS
    /// over a big table), with a side the generated tables' statistics
    /// estimate small.
    async fn q4() -> StageGraph {
        graph(
            "SELECT s_name FROM supplier WHERE s_nationkey = 7 AND EXISTS \
             (SELECT 1 FROM partsupp WHERE ps_suppkey = s_suppkey AND ps_availqty > 9000)",
        )
        .await
    }

    #[tokio::test]
    async fn the_big_side_shuffles_only_rows_the_small_side_wants() {
        let mut g = q4().await;
        // A LEFT SEMI join may filter either side; the small one filters.
        assert_eq!(g.runtime_filter_candidates.len(), 2);
        let partsupp = g
            .stages
            .iter()
            .position(|s| text(&s.plan).contains("table=partsupp"))
            .unwrap();
        let unfiltered = text(&g.stages[partsupp].plan);
        plant_runtime_filters(&mut g, Some(10 << 20)).unwrap();
        assert!(g.runtime_filter_candidates.is_empty());
        let filtered: Vec<usize> = g
            .stages
            .iter()
            .filter(|s| s.runtime_filter.is_some())
            .map(|s| s.id)
            .collect();
        assert_eq!(filtered, vec![partsupp]);
        let stage = &g.stages[partsupp];
        let filter = stage.runtime_filter.as_ref().unwrap();
        assert_eq!(filter.threshold, 10 << 20);
        // The partsupp stage now also reads the supplier stage, whole.
        assert_eq!(stage.inputs, vec![filter.creation_stage]);
        assert!(text(&g.stages[filter.creation_stage].plan).contains("table=supplier"));
        let plan = text(&stage.plan);
        let lines: Vec<&str> = plan.lines().map(str::trim).collect();
        assert!(lines[0].starts_with("ShuffleWriterExec"), "{plan}");
        assert_eq!(
            lines[1],
            "HashJoinExec: mode=CollectLeft, join_type=RightSemi, \
             on=[(runtime_filter_key_0@0, ps_suppkey@0)]",
            "{plan}"
        );
        assert_eq!(
            lines[2], "ProjectionExec: expr=[s_suppkey@0 as runtime_filter_key_0]",
            "{plan}"
        );
        assert!(
            lines[3].starts_with(&format!(
                "ShuffleReaderExec: stage={}, kind=broadcast",
                filter.creation_stage
            )),
            "{plan}"
        );
        // The join it serves, in EXPLAIN's words.
        assert_eq!(
            filter.describe(),
            format!(
                "runtime filter (join 1): rows shuffled only when [ps_suppkey@0] is among stage \
                 {}'s [s_suppkey@0], if stage {} measures at most 10.0 MiB",
                filter.creation_stage, filter.creation_stage
            )
        );
        // Measured too big, the stage runs as planned without it.
        assert!(keeps_filter(filter, 10 << 20));
        assert!(!keeps_filter(filter, (10 << 20) + 1));
        assert!(
            filter
                .describe_decision(11 << 20, 7)
                .starts_with("runtime filter: dropped; stage")
        );
        assert_eq!(
            text(&without_runtime_filter(&stage.plan).unwrap()),
            unfiltered
        );
        // A threshold below the estimate plants none.
        let mut g = q4().await;
        plant_runtime_filters(&mut g, Some(1)).unwrap();
        assert!(g.stages.iter().all(|s| s.runtime_filter.is_none()));
    }

    /// TPC-H q7: the two nations, broadcast near the top of the plan, reach
    /// the supplier scan three stages below (with the generated tables'
    /// statistics every join is a broadcast: the nations' join with the
    /// customers is planned the other way round and filters nothing). The
    /// lineitem and orders stages, which the nation keys do not reach
    /// through a column, stay as they were.
    #[tokio::test]
    async fn broadcast_keys_reach_the_scan_that_carries_them() {
        let path = format!(
            "{}/../tests/tpch/queries/q7.sql",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut g = graph(&std::fs::read_to_string(path).unwrap()).await;
        plant_runtime_filters(&mut g, Some(10 << 20)).unwrap();
        let mut planted: Vec<(String, String)> = g
            .stages
            .iter()
            .filter_map(|s| {
                let filter = s.runtime_filter.as_ref()?;
                let table = ["supplier", "customer", "lineitem", "orders", "nation"]
                    .into_iter()
                    .find(|t| text(&s.plan).contains(&format!("table={t}")))
                    .unwrap_or("?");
                let keys = filter
                    .application_keys
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                assert!(text(&g.stages[filter.creation_stage].plan).contains("n_name"));
                Some((table.to_string(), keys))
            })
            .collect();
        planted.sort();
        assert_eq!(
            planted,
            vec![("supplier".to_string(), "s_nationkey@1".to_string())]
        );
    }

    /// An equi-join key is followed into the other side of a LEFT ANTI
    /// join (its rows with other keys meet only rows dropped above), but
    /// not of a `NOT IN` one: a NULL there empties the answer for every
    /// key, and the filter would drop it.
    #[tokio::test]
    async fn keys_cross_an_anti_join_but_not_a_not_in() {
        let g = q4().await;
        let stage_of = |table: &str| {
            g.stages
                .iter()
                .position(|s| text(&s.plan).contains(&format!("table={table}")))
                .unwrap()
        };
        let (supplier, partsupp) = (stage_of("supplier"), stage_of("partsupp"));
        let reader = |stage: usize| -> Arc<dyn ExecutionPlan> {
            let schema = g.stages[stage].writer().input().schema();
            Arc::new(ShuffleReaderExec::new(
                stage,
                ExchangeKind::Hash,
                Partitioning::UnknownPartitioning(1),
                EquivalenceProperties::new(schema),
            ))
        };
        let column = |stage: usize, name: &str| -> Arc<dyn PhysicalExpr> {
            let schema = g.stages[stage].writer().input().schema();
            Arc::new(Column::new(name, schema.index_of(name).unwrap()))
        };
        let key = g.stages[supplier]
            .writer()
            .input()
            .schema()
            .index_of("s_suppkey")
            .unwrap();
        for null_aware in [false, true] {
            let join: Arc<dyn ExecutionPlan> = Arc::new(
                HashJoinExec::try_new(
                    reader(supplier),
                    reader(partsupp),
                    vec![(
                        column(supplier, "s_suppkey"),
                        column(partsupp, "ps_suppkey"),
                    )],
                    None,
                    &JoinType::LeftAnti,
                    None,
                    PartitionMode::CollectLeft,
                    NullEquality::NullEqualsNothing,
                    null_aware,
                )
                .unwrap(),
            );
            let mut dropped = vec![];
            column_origins(&g.stages, &join, key, Follow::Dropped, &mut dropped);
            let mut stages: Vec<usize> = dropped.iter().map(|(s, _)| *s).collect();
            stages.sort();
            let expected = if null_aware {
                vec![supplier]
            } else {
                let mut both = vec![supplier, partsupp];
                both.sort();
                both
            };
            assert_eq!(stages, expected, "null aware: {null_aware}");
            // The anti join's output keys are not a subset of the other side's.
            let mut superset = vec![];
            column_origins(&g.stages, &join, key, Follow::Superset, &mut superset);
            assert_eq!(superset, vec![(supplier, key)], "null aware: {null_aware}");
        }
    }

    #[tokio::test]
    async fn none_when_off_unfiltered_full_or_over_shuffles() {
        // -1: candidates noted, none planted.
        let mut g = q4().await;
        plant_runtime_filters(&mut g, None).unwrap();
        assert!(g.stages.iter().all(|s| s.runtime_filter.is_none()));
        assert!(g.runtime_filter_candidates.is_empty());
        // Neither side filters its rows: every supplier has a nation.
        let g = graph(
            "SELECT n_name FROM nation WHERE EXISTS \
             (SELECT 1 FROM supplier WHERE s_nationkey = n_nationkey)",
        )
        .await;
        assert!(g.runtime_filter_candidates.is_empty());
        // A FULL join emits the right side's unmatched rows too.
        let g = graph(
            "SELECT n_name, s_name FROM nation FULL JOIN supplier \
             ON n_nationkey = s_nationkey AND n_regionkey = 1",
        )
        .await;
        assert!(g.runtime_filter_candidates.is_empty());
        // Both sides filter, but one reads a shuffle (an aggregate: its
        // stage keeps its adaptive execution) and the other's size is
        // unknown (it is that aggregate), and the stage under it holding
        // all of its keys (the partial aggregate of suppliers) is bigger
        // than the nations it would filter: no filter.
        let mut g = graph(
            "SELECT n_name FROM nation WHERE n_regionkey = 1 AND EXISTS (SELECT 1 FROM \
             (SELECT s_nationkey, count(*) AS c FROM supplier GROUP BY s_nationkey) s \
             WHERE s.s_nationkey = n_nationkey AND c > 10)",
        )
        .await;
        assert_eq!(g.runtime_filter_candidates.len(), 3);
        plant_runtime_filters(&mut g, Some(10 << 20)).unwrap();
        assert!(g.stages.iter().all(|s| s.runtime_filter.is_none()));
    }
}
