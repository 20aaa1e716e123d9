//! The sampling pass's plan: which keys are most frequent among a random
//! fraction of a relation's rows.
//!
//! The driver runs it on the cluster before planning a query it may salt,
//! then reads its answer ([`read_sample`]) to decide which keys are hot
//! (`minispark_driver::salting::sampling`).
//!
//! ```text
//!   Limit: 64
//!     Sort: n DESC
//!       Window: sum(n) OVER () AS total
//!         Aggregate: group by keys; count(1) AS n
//!           Filter: random() < fraction
//!             the relation (its SKEW nodes removed)
//! ```

use arrow::array::{Array, Int64Array, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::functions::expr_fn::random;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, col, lit};

use super::skew_hint::strip_skew_nodes;

/// True when sampling `plan` costs about a scan of its tables: no join,
/// aggregate or window in it (a random filter cannot be pushed below
/// those, so sampling would compute them whole).
pub fn cheap_to_sample(plan: &LogicalPlan) -> bool {
    !plan
        .exists(|p| {
            Ok(matches!(
                p,
                LogicalPlan::Join(_)
                    | LogicalPlan::Aggregate(_)
                    | LogicalPlan::Window(_)
                    | LogicalPlan::Distinct(_)
            ))
        })
        .unwrap_or(true)
}

/// The sampling pass over a join side: the `limit` most frequent key
/// tuples among a random `fraction` of its rows, with each one's count
/// (`n`) and the sample's size (`total`).
pub fn sample_plan(
    input: LogicalPlan,
    keys: &[Expr],
    fraction: f64,
    limit: usize,
) -> Result<LogicalPlan> {
    let group: Vec<Expr> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| k.clone().alias(format!("k{i}")))
        .collect();
    let total = Expr::from(WindowFunction::new(sum_udaf(), vec![col("n")])).alias("total");
    LogicalPlanBuilder::from(strip_skew_nodes(input)?)
        .filter(random().lt(lit(fraction)))?
        .aggregate(group, vec![count(lit(1)).alias("n")])?
        .window(vec![total])?
        .sort(vec![col("n").sort(false, false)])?
        .limit(0, Some(limit))?
        .build()
}

/// What a [`sample_plan`] returned.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// The most frequent key tuples, most frequent first, with their counts.
    pub counts: Vec<(Vec<ScalarValue>, u64)>,
    /// Rows in the sample.
    pub total: u64,
}

/// Reads the rows of a [`sample_plan`] over `keys` key columns.
pub fn read_sample(batches: &[RecordBatch], keys: usize) -> Result<Sample> {
    let mut out = vec![];
    let mut total = 0;
    for batch in batches {
        let (Some(n), Some(t)) = (
            batch
                .column_by_name("n")
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>()),
            batch.column_by_name("total"),
        ) else {
            return internal_err!("a sampling pass returned columns {:?}", batch.schema());
        };
        let t = arrow::compute::cast(t, &DataType::Int64)?;
        let t = t
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("cast to Int64");
        for row in 0..batch.num_rows() {
            let key = (0..keys)
                .map(|i| ScalarValue::try_from_array(batch.column(i), row))
                .collect::<Result<Vec<_>>>()?;
            out.push((key, n.value(row).max(0) as u64));
            if t.is_valid(row) {
                total = total.max(t.value(row).max(0) as u64);
            }
        }
    }
    Ok(Sample { counts: out, total })
}
