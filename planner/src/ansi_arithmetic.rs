//! Spark's ANSI mode for integer arithmetic (`minispark.sql.ansi.enabled`,
//! on by default as in Spark 4): an integer `+`, `-` or `*` that overflows
//! its type fails the query instead of wrapping around.
//!
//! DataFusion 55 has no such switch (its `+` on integers wraps, and its
//! `enable_ansi_mode` reaches only some Spark functions), so an analyzer
//! rule, run after type coercion, rewrites each integer `+`, `-`, `*` whose
//! operands share an integer type into a checked function
//! (`ansi_checked_add`, `_subtract`, `_multiply`) built on Arrow's checked
//! kernels. Output column names are kept. The functions are registered in
//! every process's session, so executors decode them like any other.
//! With the setting `false`, nothing is rewritten and arithmetic wraps.
//!
//! Not covered: `sum` and `avg` overflowing (they wrap, as DataFusion's
//! do), unary minus of the smallest value, and decimals (DataFusion widens
//! them).

use std::sync::{Arc, LazyLock};

use arrow::compute::kernels::numeric;
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::prelude::SessionContext;

/// One checked integer operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Add,
    Subtract,
    Multiply,
}

impl Op {
    fn of(op: Operator) -> Option<Self> {
        match op {
            Operator::Plus => Some(Op::Add),
            Operator::Minus => Some(Op::Subtract),
            Operator::Multiply => Some(Op::Multiply),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Op::Add => "ansi_checked_add",
            Op::Subtract => "ansi_checked_subtract",
            Op::Multiply => "ansi_checked_multiply",
        }
    }
}

/// The checked function of one operation.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CheckedArithmetic {
    op: Op,
    signature: Signature,
}

impl ScalarUDFImpl for CheckedArithmetic {
    fn name(&self) -> &str {
        self.op.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [left, right] if left == right && left.is_integer() => Ok(left.clone()),
            _ => Err(DataFusionError::Plan(format!(
                "{} takes two integers of the same type, got {arg_types:?}",
                self.op.name()
            ))),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalars = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [left, right] = arrays.as_slice() else {
            return Err(DataFusionError::Plan(format!(
                "{} takes two arguments",
                self.op.name()
            )));
        };
        let result = match self.op {
            Op::Add => numeric::add(left, right),
            Op::Subtract => numeric::sub(left, right),
            Op::Multiply => numeric::mul(left, right),
        }
        .map_err(overflow_error)?;
        if scalars {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &result, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(result))
        }
    }
}

/// An overflow, in Spark's terms and with the setting that changes it.
fn overflow_error(e: ArrowError) -> DataFusionError {
    match e {
        ArrowError::ArithmeticOverflow(message) => DataFusionError::Execution(format!(
            "integer overflow: {message} (ANSI mode, as Spark's default; SET \
             minispark.sql.ansi.enabled = false to let integer arithmetic wrap around)"
        )),
        other => DataFusionError::from(other),
    }
}

static UDFS: LazyLock<[Arc<ScalarUDF>; 3]> = LazyLock::new(|| {
    [Op::Add, Op::Subtract, Op::Multiply].map(|op| {
        Arc::new(ScalarUDF::new_from_impl(CheckedArithmetic {
            op,
            signature: Signature::any(2, Volatility::Immutable),
        }))
    })
});

fn udf(op: Op) -> Arc<ScalarUDF> {
    let i = match op {
        Op::Add => 0,
        Op::Subtract => 1,
        Op::Multiply => 2,
    };
    Arc::clone(&UDFS[i])
}

/// Registers the checked functions and the rewrite in `ctx`.
pub fn register_ansi_arithmetic(ctx: &SessionContext) {
    for f in UDFS.iter() {
        ctx.register_udf(f.as_ref().clone());
    }
    ctx.add_analyzer_rule(Arc::new(AnsiArithmetic));
}

/// The analyzer rule of the module docs.
#[derive(Debug, Default)]
pub struct AnsiArithmetic;

impl AnalyzerRule for AnsiArithmetic {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        if !crate::config::minispark_config(config).ansi_enabled {
            return Ok(plan);
        }
        plan.transform_up_with_subqueries(|plan| {
            let inputs = plan.inputs();
            let schema = if inputs.is_empty() {
                plan.schema().as_ref().clone()
            } else {
                let mut schema = DFSchema::empty();
                for input in inputs {
                    schema.merge(input.schema());
                }
                schema
            };
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let original = names.save(&expr);
                let rewritten = expr.transform_up(|e| checked(e, &schema))?;
                Ok(rewritten.update_data(|e| original.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "minispark_ansi_arithmetic"
    }
}

/// `e` as a checked call when it is an integer `+`, `-` or `*`.
fn checked(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return Ok(Transformed::no(e));
    };
    let same_integers = match (left.get_type(schema), right.get_type(schema)) {
        (Ok(l), Ok(r)) => l == r && l.is_integer(),
        _ => false,
    };
    match Op::of(op) {
        Some(checked_op) if same_integers => Ok(Transformed::yes(Expr::ScalarFunction(
            ScalarFunction::new_udf(udf(checked_op), vec![*left, *right]),
        ))),
        _ => Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
            left,
            op,
            right,
        }))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array};

    async fn run(ctx: &SessionContext, sql: &str) -> Result<Vec<arrow::array::RecordBatch>> {
        ctx.sql(sql).await?.collect().await
    }

    fn ctx(ansi: &str) -> SessionContext {
        let settings = [("minispark.sql.ansi.enabled".to_string(), ansi.to_string())]
            .into_iter()
            .collect();
        crate::session::session_context(&settings).unwrap()
    }

    #[tokio::test]
    async fn overflow_fails_in_ansi_mode_and_wraps_without() {
        let err = run(&ctx("true"), "SELECT 9223372036854775807 + 1")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("integer overflow"), "{err}");
        assert!(err.contains("minispark.sql.ansi.enabled"), "{err}");
        let batches = run(&ctx("false"), "SELECT 9223372036854775807 + 1 AS w")
            .await
            .unwrap();
        let col = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(col.value(0), i64::MIN);
    }

    #[tokio::test]
    async fn names_and_ordinary_answers_are_kept() {
        let ctx = ctx("true");
        let batches = run(
            &ctx,
            "SELECT a + 1, a * 2 - 3 AS b FROM (VALUES (1), (2)) AS t(a) ORDER BY 1",
        )
        .await
        .unwrap();
        let schema = batches[0].schema();
        assert_eq!(schema.field(0).name(), "t.a + Int64(1)");
        assert_eq!(schema.field(1).name(), "b");
        let col = batches[0]
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!((col.value(0), col.value(1), col.len()), (-1, 1, 2));
        // Floats and decimals are left alone.
        run(&ctx, "SELECT 1.5e308 * 10, CAST(1 AS DECIMAL(10, 2)) + 1")
            .await
            .unwrap();
    }
}
