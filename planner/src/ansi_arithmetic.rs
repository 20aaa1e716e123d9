//! Spark's ANSI mode for integer arithmetic (`minispark.sql.ansi.enabled`,
//! on by default as in Spark 4): an integer `+`, `-` or `*` that overflows
//! its type fails the query instead of wrapping around.
//!
//! DataFusion's physical `BinaryExpr` has the switch itself
//! (`with_fail_on_overflow`: Arrow's checked kernels), but its planner
//! never sets it and datafusion-proto does not carry it. So it is set where
//! stage plans are decoded on executors: [`AnsiProtoConverter`] decodes
//! each expression as DataFusion does, then turns the switch on in every
//! `+`, `-`, `*` whose result is an integer. A long sum travels as one flat
//! list of operands and comes back as a left-deep chain: the chain is
//! walked and rebuilt with loops, never recursion, so a sum of 5 000
//! terms decodes in linear time. The driver runs no physical plan itself
//! (its stage plans all go to executors, the embedded cluster's too), so
//! that is the only place. The setting travels with the job's settings,
//! so `SET minispark.sql.ansi.enabled = false` reaches the executors.
//!
//! Constants are folded on the driver before that: DataFusion's simplifier
//! computes `9223372036854775807 + 1` wrapping around. [`AnsiLiteralCheck`],
//! an analyzer rule (it runs before the simplifier), computes every integer
//! `+`, `-`, `*` of literals with checked arithmetic first and fails the
//! query when one overflows. It rewrites nothing.
//!
//! Both fail with one message ([`overflow_error`]): it names the setting,
//! and the error depends only on the data, so the job is not retried.
//!
//! Not covered: `sum` and `avg` overflowing (they wrap, as DataFusion's
//! do), unary minus of the smallest value, and decimals (DataFusion widens
//! them).

use std::error::Error;
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema};
use arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::type_coercion::binary::BinaryTypeCoercer;
use datafusion::logical_expr::{BinaryExpr as LogicalBinaryExpr, Expr, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::BinaryExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion_proto::physical_plan::to_proto::serialize_physical_expr_with_converter;
use datafusion_proto::physical_plan::{
    PhysicalExtensionCodec, PhysicalPlanDecodeContext, PhysicalPlanNodeExt,
    PhysicalProtoConverterExtension,
};
use datafusion_proto::protobuf;
use datafusion_proto::protobuf::physical_expr_node::ExprType;

/// The error of an integer overflow in ANSI mode, in Spark's terms and
/// with the setting that changes it. `what` is Arrow's description of the
/// operation (`Overflow happened on: 9223372036854775807 + 1`).
pub fn overflow_error(what: &str) -> DataFusionError {
    DataFusionError::Execution(format!(
        "integer overflow: {what} (ANSI mode, as Spark's default; SET \
         minispark.sql.ansi.enabled = false to let integer arithmetic wrap around)"
    ))
}

/// True when the session or task runs in ANSI mode.
pub fn ansi_enabled(options: &ConfigOptions) -> bool {
    crate::config::minispark_config(options).ansi_enabled
}

/// A task's error as the user should read it: in ANSI mode, an overflow
/// anywhere in its chain of causes (found by type) becomes
/// [`overflow_error`]. Other errors are returned as they are.
pub fn explain_overflow(err: DataFusionError, ansi: bool) -> DataFusionError {
    match overflow_in(&err) {
        Some(what) if ansi => overflow_error(what),
        _ => err,
    }
}

/// Arrow's description of the overflow in `err`'s chain of causes, if any.
fn overflow_in(err: &DataFusionError) -> Option<&str> {
    let mut cause: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(ArrowError::ArithmeticOverflow(what)) = e.downcast_ref::<ArrowError>() {
            return Some(what);
        }
        cause = e.source();
    }
    None
}

/// Adds [`AnsiLiteralCheck`] to `ctx`.
pub fn register_ansi_arithmetic(ctx: &SessionContext) {
    ctx.add_analyzer_rule(Arc::new(AnsiLiteralCheck));
}

/// The analyzer rule of the module docs: checks, rewrites nothing.
#[derive(Debug, Default)]
pub struct AnsiLiteralCheck;

impl AnalyzerRule for AnsiLiteralCheck {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        if !ansi_enabled(config) {
            return Ok(plan);
        }
        plan.apply_with_subqueries(|node| {
            node.apply_expressions(|expr| {
                check_literal_arithmetic(expr)?;
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "minispark_ansi_literal_check"
    }
}

/// Fails when an integer `+`, `-` or `*` of literals in `expr` overflows.
/// Post-order over an explicit stack: deep input cannot overflow the
/// thread's stack.
fn check_literal_arithmetic(expr: &Expr) -> Result<()> {
    enum Visit<'a> {
        Enter(&'a Expr),
        Exit(&'a Expr, usize),
    }
    let mut todo = vec![Visit::Enter(expr)];
    // The integer value of each finished subtree made of literals only.
    let mut values: Vec<Option<ScalarValue>> = Vec::new();
    while let Some(visit) = todo.pop() {
        match visit {
            Visit::Enter(e) => {
                let mut children = Vec::new();
                e.apply_children(|c| {
                    children.push(c);
                    Ok(TreeNodeRecursion::Continue)
                })?;
                todo.push(Visit::Exit(e, children.len()));
                // Reversed, so the first child finishes first.
                todo.extend(children.into_iter().rev().map(Visit::Enter));
            }
            Visit::Exit(e, n) => {
                let inputs = values.split_off(values.len() - n);
                values.push(literal_value(e, &inputs)?);
            }
        }
    }
    Ok(())
}

/// The integer value of `e` when it and its children (whose values are
/// `inputs`) are integer literals, casts of them and `+`, `-`, `*`.
fn literal_value(e: &Expr, inputs: &[Option<ScalarValue>]) -> Result<Option<ScalarValue>> {
    let integer = |v: &ScalarValue| v.data_type().is_integer() && !v.is_null();
    Ok(match (e, inputs) {
        (Expr::Literal(v, _), []) if integer(v) => Some(v.clone()),
        (Expr::Cast(cast), [Some(v)]) if cast.field.data_type().is_integer() => {
            v.cast_to(cast.field.data_type()).ok().filter(integer)
        }
        (Expr::BinaryExpr(LogicalBinaryExpr { op, .. }), [Some(l), Some(r)])
            if l.data_type() == r.data_type() =>
        {
            let result = match op {
                Operator::Plus => l.add_checked(r),
                Operator::Minus => l.sub_checked(r),
                Operator::Multiply => l.mul_checked(r),
                _ => return Ok(None),
            };
            match result {
                Ok(v) => Some(v),
                Err(e) => match overflow_in(&e) {
                    Some(what) => return Err(overflow_error(what)),
                    // Not an overflow: not this rule's business.
                    None => None,
                },
            }
        }
        _ => None,
    })
}

/// Decodes stage plans as datafusion-proto does, with checked integer
/// `+`, `-`, `*` when `ansi` is on (see the module docs).
pub struct AnsiProtoConverter {
    pub ansi: bool,
}

impl PhysicalProtoConverterExtension for AnsiProtoConverter {
    fn proto_to_execution_plan(
        &self,
        proto: &protobuf::PhysicalPlanNode,
        ctx: &PhysicalPlanDecodeContext<'_>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        proto.try_into_physical_plan_with_context(ctx, self)
    }

    fn execution_plan_to_proto(
        &self,
        plan: &Arc<dyn ExecutionPlan>,
        codec: &dyn PhysicalExtensionCodec,
    ) -> Result<protobuf::PhysicalPlanNode> {
        protobuf::PhysicalPlanNode::try_from_physical_plan_with_converter(
            Arc::clone(plan),
            codec,
            self,
        )
    }

    fn proto_to_physical_expr(
        &self,
        proto: &protobuf::PhysicalExprNode,
        input_schema: &Schema,
        ctx: &PhysicalPlanDecodeContext<'_>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let expr = self.default_proto_to_physical_expr(proto, input_schema, ctx)?;
        match &proto.expr_type {
            Some(ExprType::BinaryExpr(binary)) if self.ansi => {
                // The operands were decoded (and checked) through this
                // converter; the chain joining them is new: one node for
                // a legacy left/right pair, n - 1 for n flat operands.
                let chain = binary.operands.len().saturating_sub(1).max(1);
                Ok(checked_chain(expr, chain, input_schema))
            }
            _ => Ok(expr),
        }
    }

    fn physical_expr_to_proto(
        &self,
        expr: &Arc<dyn PhysicalExpr>,
        codec: &dyn PhysicalExtensionCodec,
    ) -> Result<protobuf::PhysicalExprNode> {
        serialize_physical_expr_with_converter(expr, codec, self)
    }
}

/// `expr`, the top of a left-deep chain of `chain` binary nodes, rebuilt
/// with overflow checks on each `+`, `-`, `*` whose result is an integer.
/// Iterative: a chain 5 000 long needs no deep stack.
fn checked_chain(
    expr: Arc<dyn PhysicalExpr>,
    chain: usize,
    schema: &Schema,
) -> Arc<dyn PhysicalExpr> {
    // Down the left spine, keeping each node's operator and right operand.
    let mut spine: Vec<(Operator, Arc<dyn PhysicalExpr>)> = Vec::with_capacity(chain);
    let mut node = expr;
    while spine.len() < chain {
        let Some(binary) = node.downcast_ref::<BinaryExpr>() else {
            break;
        };
        spine.push((*binary.op(), Arc::clone(binary.right())));
        let left = Arc::clone(binary.left());
        node = left;
    }
    // Back up, typing each node from its operands' types (asking a node
    // for its type would walk the chain below it again).
    let mut data_type: Option<DataType> = node.data_type(schema).ok();
    while let Some((op, right)) = spine.pop() {
        let result = data_type.as_ref().and_then(|left| {
            let right = right.data_type(schema).ok()?;
            BinaryTypeCoercer::new(left, &op, &right)
                .get_result_type()
                .ok()
        });
        let check = matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply)
            && result.as_ref().is_some_and(DataType::is_integer);
        node = Arc::new(BinaryExpr::new(node, op, right).with_fail_on_overflow(check));
        data_type = result;
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array, RecordBatch};
    use arrow::datatypes::Field;
    use datafusion::execution::TaskContext;
    use datafusion::physical_expr::expressions::Column;
    use datafusion::physical_plan::projection::ProjectionExec;

    async fn run(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
        ctx.sql(sql).await?.collect().await
    }

    fn ctx(ansi: &str) -> SessionContext {
        let settings = [("minispark.sql.ansi.enabled".to_string(), ansi.to_string())]
            .into_iter()
            .collect();
        crate::session::session_context(&settings).unwrap()
    }

    #[tokio::test]
    async fn a_literal_overflow_fails_planning_in_ansi_mode_and_wraps_without() {
        let err = run(&ctx("true"), "SELECT 9223372036854775807 + 1")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("integer overflow"), "{err}");
        assert!(err.contains("minispark.sql.ansi.enabled"), "{err}");
        // Inside a cast and a subquery too.
        let err = run(
            &ctx("true"),
            "SELECT (SELECT CAST(2147483647 AS INT) * CAST(2 AS INT))",
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("integer overflow"), "{err}");
        let batches = run(&ctx("false"), "SELECT 9223372036854775807 + 1 AS w")
            .await
            .unwrap();
        let col = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(col.value(0), i64::MIN);
        // Literals that fit, floats and decimals are left alone.
        run(
            &ctx("true"),
            "SELECT 9223372036854775806 + 1, 1.5e308 * 10, CAST(1 AS DECIMAL(10, 2)) + 1",
        )
        .await
        .unwrap();
    }

    #[test]
    fn a_deep_literal_sum_is_checked_without_deep_recursion() {
        // 100 000 nested `+` nodes: a recursive walk would need a deep stack.
        let mut e = Expr::Literal(ScalarValue::Int64(Some(1)), None);
        for _ in 0..100_000 {
            e = Expr::BinaryExpr(LogicalBinaryExpr::new(
                Box::new(e),
                Operator::Plus,
                Box::new(Expr::Literal(ScalarValue::Int64(Some(1)), None)),
            ));
        }
        check_literal_arithmetic(&e).unwrap();
        e = Expr::BinaryExpr(LogicalBinaryExpr::new(
            Box::new(e),
            Operator::Plus,
            Box::new(Expr::Literal(ScalarValue::Int64(Some(i64::MAX)), None)),
        ));
        let err = check_literal_arithmetic(&e).unwrap_err().to_string();
        assert!(err.contains("integer overflow"), "{err}");
        // Dropping 100 000 nested boxes recurses: leak it instead.
        std::mem::forget(e);
    }

    /// A projection of `n` terms `c + c + ...` over one Int64 column,
    /// encoded as the driver does and decoded as an executor does.
    fn decoded_sum(n: usize, ansi: bool, values: Vec<i64>) -> Result<Vec<RecordBatch>> {
        let schema = Arc::new(Schema::new(vec![Field::new("c", DataType::Int64, false)]));
        let column = || Arc::new(Column::new("c", 0)) as Arc<dyn PhysicalExpr>;
        let mut sum = column();
        for _ in 1..n {
            sum = Arc::new(BinaryExpr::new(sum, Operator::Plus, column()));
        }
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(values))],
        )?;
        let source = datafusion::datasource::memory::MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            schema,
            None,
        )?;
        let plan = Arc::new(ProjectionExec::try_new(
            vec![(sum, "s".to_string())],
            source,
        )?);
        let bytes = crate::codec::encode_plan(plan)?;
        let settings = [("minispark.sql.ansi.enabled".to_string(), ansi.to_string())]
            .into_iter()
            .collect();
        let config = crate::session::session_config(&settings)?;
        let task = TaskContext::default().with_session_config(config);
        let decoded = crate::codec::decode_plan(&bytes, &task)?;
        let stream = decoded.execute(0, Arc::new(task))?;
        let out = futures::executor::block_on(datafusion::physical_plan::common::collect(stream));
        // Dropping a 5 000-deep chain recurses: leak the plan.
        std::mem::forget(decoded);
        out
    }

    #[test]
    fn a_long_decoded_sum_runs_and_overflows_by_the_setting() {
        // On a thread with room for evaluating the deep chain, as an
        // executor's tasks have.
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(|| {
                let batches = decoded_sum(5000, true, vec![1, 2]).unwrap();
                let col = batches[0]
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                assert_eq!((col.value(0), col.value(1)), (5000, 10000));
                let err = decoded_sum(3, true, vec![i64::MAX / 2])
                    .unwrap_err()
                    .to_string();
                assert!(err.contains("Overflow"), "{err}");
                let err =
                    explain_overflow(decoded_sum(3, true, vec![i64::MAX / 2]).unwrap_err(), true)
                        .to_string();
                assert!(err.contains("minispark.sql.ansi.enabled"), "{err}");
                let batches = decoded_sum(3, false, vec![i64::MAX / 2]).unwrap();
                let col = batches[0]
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                assert_eq!(col.value(0), (i64::MAX / 2).wrapping_mul(3));
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
