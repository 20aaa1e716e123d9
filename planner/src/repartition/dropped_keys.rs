//! `DISTRIBUTE BY` keys that the SELECT list drops, as Spark allows:
//! `SELECT a FROM t DISTRIBUTE BY b`.
//!
//! DataFusion's SQL planner puts the repartition above the SELECT's
//! projection, where `b` is gone. As DataFusion does for an `ORDER BY` of
//! a dropped column, the projection keeps the missing key columns for the
//! repartition, and a projection above it drops them again:
//!
//! ```text
//!   Repartition: DistributeBy(b)          Projection: a
//!     Projection: a               ──▶       Repartition: DistributeBy(b)
//!       TableScan: t                          Projection: a, b
//!                                               TableScan: t
//! ```
//!
//! Run on the plan the SQL planner made, before the optimizer.

use std::sync::Arc;

use datafusion::common::Column;
use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, Partitioning, Repartition};

/// `plan` with the key columns of every `DISTRIBUTE BY` (and repartition
/// hint) kept below it (see the module docs).
pub fn keep_distribute_keys(plan: LogicalPlan) -> Result<LogicalPlan> {
    Ok(plan.transform_up(keep_keys)?.data)
}

fn keep_keys(node: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let LogicalPlan::Repartition(r) = &node else {
        return Ok(Transformed::no(node));
    };
    let keys = match &r.partitioning_scheme {
        Partitioning::DistributeBy(keys) | Partitioning::Hash(keys, _) => keys,
        _ => return Ok(Transformed::no(node)),
    };
    let LogicalPlan::Projection(projection) = r.input.as_ref() else {
        return Ok(Transformed::no(node));
    };
    let below = projection.input.schema();
    let mut missing: Vec<Column> = vec![];
    for key in keys {
        for column in key.column_refs() {
            if !projection.schema.has_column(column) && !missing.contains(column) {
                missing.push(column.clone());
            }
        }
    }
    // Nothing missing, or missing below the projection too (DataFusion
    // then names the unknown column).
    if missing.is_empty() || !missing.iter().all(|c| below.has_column(c)) {
        return Ok(Transformed::no(node));
    }
    let output: Vec<Expr> = projection
        .schema
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let mut widened = projection.expr.clone();
    widened.extend(missing.into_iter().map(Expr::Column));
    let inner = LogicalPlanBuilder::from(projection.input.as_ref().clone())
        .project(widened)?
        .build()?;
    let repartition = LogicalPlan::Repartition(Repartition {
        input: Arc::new(inner),
        partitioning_scheme: r.partitioning_scheme.clone(),
    });
    let plan = LogicalPlanBuilder::from(repartition)
        .project(output)?
        .build()?;
    Ok(Transformed::yes(plan))
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    #[tokio::test]
    async fn a_dropped_key_is_kept_below_the_repartition_only() {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t AS SELECT 1 AS a, 2 AS b")
            .await
            .unwrap();
        let plan = ctx
            .state()
            .create_logical_plan("SELECT a FROM t DISTRIBUTE BY b")
            .await
            .unwrap();
        let plan = keep_distribute_keys(plan).unwrap();
        let text = plan.display_indent().to_string();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        assert!(lines[0].starts_with("Projection: t.a"), "{text}");
        assert!(
            lines[1].starts_with("Repartition: DistributeBy(") && lines[1].contains('b'),
            "{text}"
        );
        assert!(
            lines[2].starts_with("Projection: t.a, ") && lines[2].ends_with('b'),
            "{text}"
        );
        assert_eq!(plan.schema().fields().len(), 1);
        // A key the SELECT keeps changes nothing.
        let plan = ctx
            .state()
            .create_logical_plan("SELECT a, b FROM t DISTRIBUTE BY b")
            .await
            .unwrap();
        let before = plan.display_indent().to_string();
        let after = keep_distribute_keys(plan)
            .unwrap()
            .display_indent()
            .to_string();
        assert_eq!(before, after);
    }
}
