//! `SORT BY` / `df.sort_within_partitions`: sort each partition on its own.
//!
//! Spark's `SORT BY` orders the rows inside each partition and leaves the
//! partitions where they are: no exchange, no global order. Here it is a
//! DataFusion `SortExec` that preserves its input's partitioning.

use std::fmt;
use std::sync::Arc;

use datafusion::catalog::Session;
use datafusion::common::{DFSchemaRef, Result, internal_err};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, LogicalPlan, SortExpr, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_planner::PhysicalPlanner;

use arrow::compute::SortOptions;

/// A sort within each partition of `input` (at most `fetch` rows each).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct SortWithinPartitionsNode {
    pub exprs: Vec<SortExpr>,
    pub fetch: Option<usize>,
    pub input: LogicalPlan,
}

impl SortWithinPartitionsNode {
    pub(super) fn plan(
        &self,
        planner: &dyn PhysicalPlanner,
        logical: &LogicalPlan,
        input: &Arc<dyn ExecutionPlan>,
        session: &dyn Session,
        planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let sort_exprs = self
            .exprs
            .iter()
            .map(|s| {
                let expr = planner.create_physical_expr(
                    &s.expr,
                    logical.schema(),
                    session,
                    planning_ctx,
                )?;
                Ok(PhysicalSortExpr::new(
                    expr,
                    SortOptions::new(!s.asc, s.nulls_first),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let Some(ordering) = LexOrdering::new(sort_exprs) else {
            return Ok(Some(Arc::clone(input)));
        };
        Ok(Some(Arc::new(
            SortExec::new(ordering, Arc::clone(input))
                .with_preserve_partitioning(true)
                .with_fetch(self.fetch),
        )))
    }
}

impl UserDefinedLogicalNodeCore for SortWithinPartitionsNode {
    fn name(&self) -> &str {
        "SortWithinPartitions"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        self.exprs.iter().map(|s| s.expr.clone()).collect()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let exprs: Vec<String> = self.exprs.iter().map(|e| e.to_string()).collect();
        write!(f, "SortWithinPartitions: {}", exprs.join(", "))
    }

    fn with_exprs_and_inputs(
        &self,
        exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let Some(input) = inputs.pop().filter(|_| inputs.is_empty()) else {
            return internal_err!("a sort within partitions has exactly one input");
        };
        if exprs.len() != self.exprs.len() {
            return internal_err!("a sort within partitions keeps its number of keys");
        }
        let exprs = self
            .exprs
            .iter()
            .zip(exprs)
            .map(|(s, e)| SortExpr::new(e, s.asc, s.nulls_first))
            .collect();
        Ok(Self {
            exprs,
            fetch: self.fetch,
            input,
        })
    }
}
