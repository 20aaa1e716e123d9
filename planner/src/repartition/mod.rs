//! Spark's repartitioning: `DISTRIBUTE BY`, `CLUSTER BY`, `SORT BY`, the
//! `REPARTITION` / `REBALANCE` hints and `df.repartition`.
//!
//! Everything that asks for a shuffle ends as one plan node,
//! [`RepartitionExchangeExec`], which the stage cutter
//! ([`crate::stages`]) turns into a shuffle of its own: a stage boundary
//! that EXPLAIN names after what asked for it. `COALESCE` asks for no
//! shuffle and ends as a [`coalesce::CoalesceExec`] inside a stage.
//!
//! | asked for by | exchange |
//! |---|---|
//! | `DISTRIBUTE BY e, ..` | hash of `e, ..` into `minispark.shuffle.partitions`: row to `pmod(hash(e, ..), n)` with Spark's Murmur3, so a key lands where Spark puts it |
//! | `CLUSTER BY e, ..` | the same, then `SORT BY e, ..` |
//! | `SORT BY e, ..` | no exchange: a sort inside each partition, no global order |
//! | `/*+ REPARTITION(n) */` | round robin, row by row, into `n` |
//! | `/*+ COALESCE(n) */`, `df.coalesce(n)` | no exchange: neighbouring partitions read by one task ([`coalesce`]) |
//! | `/*+ REPARTITION(n, c, ..) */` | hash of `c, ..` into `n` |
//! | `/*+ REPARTITION(c, ..) */`, `/*+ REBALANCE(c, ..) */` | hash of `c, ..` into `minispark.shuffle.partitions` |
//! | `df.repartition(n)`, `df.repartition_by(n, exprs)` | round robin / hash into `n` |
//! | `/*+ REPARTITION_BY_RANGE(n, c, ..) */`, `/*+ REPARTITION_BY_RANGE(c, ..) */` | range of `c, ..` (`ASC NULLS FIRST`) into `n` (or `minispark.shuffle.partitions`), bounds from a sample ([`range_sample`]) |
//! | `df.repartition_by_range(n, sort_exprs)` | range of the sort keys, their directions honoured, into `n` |
//! | `df.sort_within_partitions(exprs)` | as `SORT BY` |
//!
//! How the SQL clauses get here: DataFusion's SQL planner turns
//! `DISTRIBUTE BY` into a logical `Repartition` with
//! `Partitioning::DistributeBy`, and refuses `SORT BY` and `CLUSTER BY`.
//! [`clauses::rewrite_statement`] rewrites a statement's syntax tree before
//! DataFusion plans it: `CLUSTER BY` becomes `DISTRIBUTE BY` + `SORT BY`,
//! a repartition hint a `DISTRIBUTE BY` list headed by a marker call
//! ([`markers`]) that carries the hint's name and partition count, and
//! `SORT BY` an `ORDER BY` headed by another marker. DataFusion's optimizer
//! leaves both markers alone (they are volatile), and
//! [`plan_repartitions`], run just before physical planning, turns the
//! marked nodes into [`RepartitionNode`]s and
//! [`SortWithinPartitionsNode`]s.

pub mod clauses;
pub mod coalesce;
pub mod dropped_keys;
pub mod markers;
pub mod range_sample;
pub mod shuffle_origin;
mod sort_within_partitions;

pub use shuffle_origin::ShuffleOrigin;
pub use sort_within_partitions::SortWithinPartitionsNode;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchemaRef, Result, ScalarValue, internal_err, plan_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, Partitioning as LogicalPartitioning, SortExpr,
    UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_expr::{
    EquivalenceProperties, Partitioning, PhysicalExpr, PhysicalSortExpr,
};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};

use crate::exchange::RangeSpec;

/// How rows are redistributed, in logical expressions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub enum Repartitioning {
    /// Row `r` to `pmod(spark_murmur3(keys(r)), n)`.
    Hash(Vec<Expr>, usize),
    /// Rows dealt out one by one to `n` partitions.
    RoundRobin(usize),
    /// Neighbouring partitions merged into `n`, without a shuffle
    /// ([`coalesce`]).
    Coalesce(usize),
    /// Row `r` to the partition whose range of the sort keys holds it,
    /// between bounds sampled before the shuffle
    /// ([`crate::exchange::range`]).
    Range(Vec<SortExpr>, usize),
}

/// A logical node asking for a repartition of its input; `origin` is what
/// asked for it (`DISTRIBUTE BY`, `REPARTITION hint`, ..), for EXPLAIN.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct RepartitionNode {
    pub how: Repartitioning,
    pub origin: String,
    /// What adaptive execution may do to its partitions ([`shuffle_origin`]).
    pub shuffle_origin: ShuffleOrigin,
    pub input: LogicalPlan,
}

impl UserDefinedLogicalNodeCore for RepartitionNode {
    fn name(&self) -> &str {
        "Repartition"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        match &self.how {
            Repartitioning::Hash(exprs, _) => exprs.clone(),
            Repartitioning::Range(keys, _) => keys.iter().map(|k| k.expr.clone()).collect(),
            Repartitioning::RoundRobin(_) | Repartitioning::Coalesce(_) => vec![],
        }
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Repartition ({}): {:?}", self.origin, self.how)
    }

    fn with_exprs_and_inputs(
        &self,
        exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let Some(input) = inputs.pop().filter(|_| inputs.is_empty()) else {
            return internal_err!("a repartition has exactly one input");
        };
        let how = match &self.how {
            Repartitioning::Hash(_, n) => Repartitioning::Hash(exprs, *n),
            Repartitioning::Range(keys, n) => Repartitioning::Range(
                keys.iter()
                    .zip(exprs)
                    .map(|(k, e)| SortExpr::new(e, k.asc, k.nulls_first))
                    .collect(),
                *n,
            ),
            other => other.clone(),
        };
        Ok(Self {
            how,
            origin: self.origin.clone(),
            shuffle_origin: self.shuffle_origin,
            input,
        })
    }
}

/// The physical form of a requested repartition. The stage cutter replaces
/// it by a shuffle (writer and reader in two stages); it is never executed.
#[derive(Debug)]
pub struct RepartitionExchangeExec {
    input: Arc<dyn ExecutionPlan>,
    partitioning: Partitioning,
    origin: String,
    properties: Arc<PlanProperties>,
    /// A range repartition's keys and, once sampled, bounds.
    range: Option<RangeSpec>,
    shuffle_origin: ShuffleOrigin,
}

impl RepartitionExchangeExec {
    /// A range repartition into `n` partitions by `keys` (evaluated
    /// against `input`); its bounds are sampled before the query runs
    /// ([`range_sample`]).
    pub fn new_range(
        input: Arc<dyn ExecutionPlan>,
        n: usize,
        range: RangeSpec,
        origin: String,
    ) -> Self {
        let mut exchange = Self::new(input, Partitioning::UnknownPartitioning(n), origin);
        exchange.range = Some(range);
        exchange
    }

    /// A range repartition's keys and bounds.
    pub fn range(&self) -> Option<&RangeSpec> {
        self.range.as_ref()
    }

    /// This range repartition with its bounds sampled.
    pub fn with_bounds(&self, bounds: arrow::array::RecordBatch, sampled_rows: u64) -> Self {
        let mut exchange = Self::new(
            Arc::clone(&self.input),
            self.partitioning.clone(),
            self.origin.clone(),
        );
        exchange.shuffle_origin = self.shuffle_origin;
        exchange.range = self.range.as_ref().map(|r| RangeSpec {
            keys: r.keys.clone(),
            bounds: Some(bounds),
            sampled_rows,
        });
        exchange
    }

    /// `partitioning`: `Hash(keys, n)` or `RoundRobinBatch(n)`.
    pub fn new(input: Arc<dyn ExecutionPlan>, partitioning: Partitioning, origin: String) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            partitioning.clone(),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            input,
            partitioning,
            origin,
            properties,
            range: None,
            shuffle_origin: ShuffleOrigin::RepartitionByCol,
        }
    }

    /// This exchange, with what adaptive execution may do to its partitions.
    pub fn with_shuffle_origin(mut self, shuffle_origin: ShuffleOrigin) -> Self {
        self.shuffle_origin = shuffle_origin;
        self
    }

    pub fn shuffle_origin(&self) -> ShuffleOrigin {
        self.shuffle_origin
    }

    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    pub fn partitioning(&self) -> &Partitioning {
        &self.partitioning
    }

    /// What asked for this exchange: `DISTRIBUTE BY`, a hint, a DataFrame call.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl DisplayAs for RepartitionExchangeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.range {
            Some(range) => write!(
                f,
                "RepartitionExchangeExec: range on [{}] into {}, asked for by {}",
                range.describe_keys(),
                self.partitioning.partition_count(),
                self.origin
            ),
            None => write!(
                f,
                "RepartitionExchangeExec: {}, asked for by {}",
                self.partitioning, self.origin
            ),
        }
    }
}

impl ExecutionPlan for RepartitionExchangeExec {
    fn name(&self) -> &str {
        "RepartitionExchangeExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    // The exchange itself repartitions: no round robin under it.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match children.pop() {
            Some(input) if children.is_empty() => {
                let mut exchange = Self::new(input, self.partitioning.clone(), self.origin.clone());
                exchange.range = self.range.clone();
                exchange.shuffle_origin = self.shuffle_origin;
                Ok(Arc::new(exchange))
            }
            _ => internal_err!("RepartitionExchangeExec has exactly one child"),
        }
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let hash: &[Arc<dyn PhysicalExpr>] = match &self.partitioning {
            Partitioning::Hash(exprs, _) => exprs,
            _ => &[],
        };
        let range_keys = self
            .range
            .iter()
            .flat_map(|r| r.keys.iter().map(|k| &k.expr));
        for e in hash.iter().chain(range_keys) {
            if f(e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        internal_err!(
            "the repartition asked for by {} is a shuffle between stages, not an operator",
            self.origin
        )
    }
}

/// Rewrites the marked repartitions and sorts of `plan` (see the module
/// docs) into [`RepartitionNode`]s and [`SortWithinPartitionsNode`]s;
/// `shuffle_partitions` is the partition count of a repartition that
/// names none (`DISTRIBUTE BY`).
pub fn plan_repartitions(plan: LogicalPlan, shuffle_partitions: usize) -> Result<LogicalPlan> {
    let n_default = shuffle_partitions.max(1);
    Ok(plan
        .transform_up(|node| match node {
            LogicalPlan::Repartition(r)
                if !matches!(r.partitioning_scheme, LogicalPartitioning::Range(_)) =>
            {
                let input = Arc::unwrap_or_clone(r.input);
                let (how, origin, shuffle_origin) = match r.partitioning_scheme {
                    LogicalPartitioning::RoundRobinBatch(n) => (
                        Repartitioning::RoundRobin(n.max(1)),
                        "repartition(n)".into(),
                        ShuffleOrigin::RepartitionByNum,
                    ),
                    // `df.coalesce(n)` marks a hash repartition.
                    LogicalPartitioning::Hash(exprs, _)
                        if exprs.first().is_some_and(|e| {
                            matches!(markers::repartition_marker(e), Ok(Some(_)))
                        }) =>
                    {
                        distribute_by(exprs, n_default)?
                    }
                    LogicalPartitioning::Hash(exprs, n) => (
                        Repartitioning::Hash(exprs, n.max(1)),
                        "repartition_by(n, exprs)".into(),
                        ShuffleOrigin::RepartitionByNum,
                    ),
                    LogicalPartitioning::DistributeBy(exprs) => distribute_by(exprs, n_default)?,
                    LogicalPartitioning::Range(_) => return internal_err!("guarded above"),
                };
                Ok(Transformed::yes(LogicalPlan::Extension(Extension {
                    node: Arc::new(RepartitionNode {
                        how,
                        origin,
                        shuffle_origin,
                        input,
                    }),
                })))
            }
            LogicalPlan::Sort(sort)
                if sort
                    .expr
                    .first()
                    .is_some_and(|s| markers::is_sort_by_marker(&s.expr)) =>
            {
                let exprs = sort.expr[1..].to_vec();
                let input = Arc::unwrap_or_clone(sort.input);
                Ok(Transformed::yes(LogicalPlan::Extension(Extension {
                    node: Arc::new(SortWithinPartitionsNode {
                        exprs,
                        fetch: sort.fetch,
                        input,
                    }),
                })))
            }
            other => Ok(Transformed::no(other)),
        })?
        .data)
}

/// A `DISTRIBUTE BY` list, possibly headed by a marker of what wrote it.
fn distribute_by(
    exprs: Vec<Expr>,
    n_default: usize,
) -> Result<(Repartitioning, String, ShuffleOrigin)> {
    let (origin, n, keys, directions) = match exprs.split_first() {
        Some((first, rest)) => match markers::repartition_marker(first)? {
            Some((origin, n)) => (origin, n, rest.to_vec(), markers::marker_directions(first)?),
            None => ("DISTRIBUTE BY".to_string(), None, exprs, None),
        },
        None => return plan_err!("DISTRIBUTE BY needs at least one expression"),
    };
    let shuffle_origin = if origin.to_ascii_uppercase().starts_with("REBALANCE") {
        ShuffleOrigin::RebalanceByCol
    } else if n.is_some() {
        ShuffleOrigin::RepartitionByNum
    } else {
        ShuffleOrigin::RepartitionByCol
    };
    let n = n.unwrap_or(n_default);
    let by_range = origin
        .to_ascii_uppercase()
        .starts_with("REPARTITION_BY_RANGE");
    let how = if origin.to_ascii_uppercase().starts_with("COALESCE") {
        Repartitioning::Coalesce(n)
    } else if by_range {
        if keys.is_empty() {
            return plan_err!("{origin} needs the keys to range-partition by");
        }
        // Spark's default for a range key: ascending, NULLs first.
        let directions = directions.unwrap_or_else(|| vec![(true, true); keys.len()]);
        if directions.len() != keys.len() {
            return plan_err!(
                "{origin}: {} key directions for {} keys",
                directions.len(),
                keys.len()
            );
        }
        Repartitioning::Range(
            keys.into_iter()
                .zip(directions)
                .map(|(k, (asc, nulls_first))| SortExpr::new(k, asc, nulls_first))
                .collect(),
            n,
        )
    } else if keys.is_empty() {
        Repartitioning::RoundRobin(n)
    } else {
        Repartitioning::Hash(keys, n)
    };
    Ok((how, origin, shuffle_origin))
}

/// Plans [`RepartitionNode`]s and [`SortWithinPartitionsNode`]s.
#[derive(Debug, Default)]
pub struct RepartitionPlanner;

#[async_trait]
impl ExtensionPlanner for RepartitionPlanner {
    async fn plan_extension(
        &self,
        planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn Session,
        planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let ([logical], [input]) = (logical_inputs, physical_inputs) else {
            return Ok(None);
        };
        if let Some(sort) = node.as_any().downcast_ref::<SortWithinPartitionsNode>() {
            return sort.plan(planner, logical, input, session, planning_ctx);
        }
        let Some(repartition) = node.as_any().downcast_ref::<RepartitionNode>() else {
            return Ok(None);
        };
        let partitioning = match &repartition.how {
            Repartitioning::Coalesce(n) => {
                return Ok(Some(Arc::new(coalesce::CoalesceExec::new(
                    Arc::clone(input),
                    *n,
                    repartition.origin.clone(),
                ))));
            }
            Repartitioning::RoundRobin(n) => Partitioning::RoundRobinBatch(*n),
            Repartitioning::Hash(exprs, n) => {
                let exprs = exprs
                    .iter()
                    .map(|e| {
                        planner.create_physical_expr(e, logical.schema(), session, planning_ctx)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Partitioning::Hash(exprs, *n)
            }
            Repartitioning::Range(keys, n) => {
                let keys = keys
                    .iter()
                    .map(|k| {
                        let expr = planner.create_physical_expr(
                            &k.expr,
                            logical.schema(),
                            session,
                            planning_ctx,
                        )?;
                        Ok(PhysicalSortExpr::new(
                            expr,
                            arrow::compute::SortOptions::new(!k.asc, k.nulls_first),
                        ))
                    })
                    .collect::<Result<Vec<_>>>()?;
                return Ok(Some(Arc::new(
                    RepartitionExchangeExec::new_range(
                        Arc::clone(input),
                        *n,
                        RangeSpec::new(keys),
                        repartition.origin.clone(),
                    )
                    .with_shuffle_origin(repartition.shuffle_origin),
                )));
            }
        };
        Ok(Some(Arc::new(
            RepartitionExchangeExec::new(
                Arc::clone(input),
                partitioning,
                repartition.origin.clone(),
            )
            .with_shuffle_origin(repartition.shuffle_origin),
        )))
    }
}

/// An integer literal, as hint arguments and markers carry them.
pub(crate) fn literal_count(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => Some(*v),
        Expr::Literal(ScalarValue::Int32(Some(v)), _) => Some(*v as i64),
        Expr::Cast(c) => literal_count(&c.expr),
        Expr::TryCast(c) => literal_count(&c.expr),
        _ => None,
    }
}
