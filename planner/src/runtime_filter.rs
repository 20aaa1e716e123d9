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
//! A broadcast join's keys filter the same way the inputs of a shuffled
//! inner join under it on the same key: in TPC-H q18 the nine orders of
//! `o_orderkey IN (SELECT l_orderkey ... HAVING sum(l_quantity) > 313)` are
//! a broadcast RIGHT SEMI join's build side, applied after the shuffled
//! join of orders with all 6 M lineitems; the nine keys now filter that
//! lineitem scan before its shuffle (what DataFusion's dynamic filters do
//! inside one process).
//!
//! The filter is a hash join in the big side's map stage: `RightSemi`,
//! built from the small side's join keys (one hash table per executor,
//! shared by its tasks, see `minispark_executor::broadcast_hash_table`),
//! probed by every row before the shuffle writer. It keeps NULL keys only
//! when the join itself matches NULL with NULL.
//!
//! When: the stage cutter notes every shuffled hash join, and every
//! broadcast INNER / RIGHT SEMI join on one key over a shuffled inner join
//! on that key, as candidates: one per side whose unmatched rows the join
//! type never emits (never for a FULL or a null-aware anti join), filtered
//! by the other side when that side filters its own rows (a `FilterExec`: a
//! whole dimension table joined on a foreign key would keep every row;
//! Spark asks for a selective filter too). [`plant_runtime_filters`] plants
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

use datafusion::common::{JoinType, NullEquality, Result, internal_err};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::{ExecutionPlan, replace_children_if_necessary};

use crate::exchange::{ExchangeKind, ShuffleReaderExec};
use crate::explain::fmt_bytes;
use crate::join_strategy::SizeEstimate;
use crate::stages::{StageGraph, collect_readers};

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
        if reads_shuffles || graph.stages[app].runtime_filter.is_some() {
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
        // unknown (it is that aggregate): no filter.
        let mut g = graph(
            "SELECT n_name FROM nation WHERE n_regionkey = 1 AND EXISTS (SELECT 1 FROM \
             (SELECT s_nationkey, count(*) AS c FROM supplier GROUP BY s_nationkey) s \
             WHERE s.s_nationkey = n_nationkey AND c > 10)",
        )
        .await;
        assert_eq!(g.runtime_filter_candidates.len(), 2);
        plant_runtime_filters(&mut g, Some(10 << 20)).unwrap();
        assert!(g.stages.iter().all(|s| s.runtime_filter.is_none()));
    }
}
