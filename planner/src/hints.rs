//! Join strategy hints: "broadcast this side", "shuffle this side".
//!
//! DataFusion chooses between a broadcast join (build side collected whole,
//! `CollectLeft`) and a shuffled join (`Partitioned`) from the estimated
//! size of each side. A hint wraps one side of a join in a [`HintNode`],
//! planned as a [`HintExec`] that passes its input through unchanged but
//! reports the size the hint asks for:
//!
//! ```text
//!   Join                       HashJoinExec(mode = CollectLeft)   ◀── JoinSelection sees a
//!   ├── events                 ├── HintExec(broadcast): ~1 row      tiny build side
//!   └── Hint(broadcast)        │    └── scan titles
//!        └── titles            └── scan events
//! ```
//!
//! After physical optimization [`strip_hints`] removes every `HintExec`, so
//! no hint reaches an executor. A broadcast hint on a side that must not be
//! broadcast (the preserved side of an outer join) is ignored by the stage
//! cutter, which turns such joins into shuffled ones: a hint never changes
//! an answer.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchemaRef, Result, Statistics, internal_err};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};

/// What a hint asks of the join it feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum JoinHint {
    /// Collect this side whole and send it to every task of the other side,
    /// whatever its size (Spark's `BROADCAST`).
    Broadcast,
    /// Never broadcast this side: shuffle it by the join keys (Spark's
    /// `SHUFFLE_HASH`).
    Shuffle,
}

impl JoinHint {
    pub fn name(&self) -> &'static str {
        match self {
            JoinHint::Broadcast => "broadcast",
            JoinHint::Shuffle => "shuffle",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "broadcast" => Some(JoinHint::Broadcast),
            "shuffle" => Some(JoinHint::Shuffle),
            _ => None,
        }
    }

    /// The size the hinted side reports to the join planner. Inexact, so
    /// no rule takes it for a fact (e.g. to answer `COUNT(*)`).
    fn statistics(&self, schema: &arrow::datatypes::Schema) -> Statistics {
        let (rows, bytes) = match self {
            JoinHint::Broadcast => (1, 1),
            // Far above any broadcast threshold, far from overflowing sums.
            JoinHint::Shuffle => (1 << 40, 1 << 50),
        };
        let mut stats = Statistics::new_unknown(schema);
        stats.num_rows = Precision::Inexact(rows);
        stats.total_byte_size = Precision::Inexact(bytes);
        stats
    }
}

/// A logical node that marks its input as one side of a join with a hint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct HintNode {
    pub hint: JoinHint,
    pub input: LogicalPlan,
}

impl HintNode {
    /// `plan` wrapped in a hint.
    pub fn wrap(plan: LogicalPlan, hint: JoinHint) -> LogicalPlan {
        LogicalPlan::Extension(Extension {
            node: Arc::new(HintNode { hint, input: plan }),
        })
    }
}

impl UserDefinedLogicalNodeCore for HintNode {
    fn name(&self) -> &str {
        "JoinHint"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    // Filters and projections move through a hint as through nothing.
    fn prevent_predicate_push_down_columns(&self) -> HashSet<String> {
        HashSet::new()
    }

    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        Some(vec![output_columns.to_vec()])
    }

    fn supports_limit_pushdown(&self) -> bool {
        true
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "JoinHint: {}", self.hint.name())
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        match inputs.pop() {
            Some(input) if inputs.is_empty() => Ok(Self {
                hint: self.hint,
                input,
            }),
            _ => internal_err!("a join hint has exactly one input"),
        }
    }
}

/// The physical form of a hint: its input, with the hinted size.
#[derive(Debug)]
pub struct HintExec {
    hint: JoinHint,
    input: Arc<dyn ExecutionPlan>,
}

impl HintExec {
    pub fn new(hint: JoinHint, input: Arc<dyn ExecutionPlan>) -> Self {
        Self { hint, input }
    }
}

impl DisplayAs for HintExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "HintExec: {}", self.hint.name())
    }
}

impl ExecutionPlan for HintExec {
    fn name(&self) -> &str {
        "HintExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match children.pop() {
            Some(input) if children.is_empty() => Ok(Arc::new(HintExec::new(self.hint, input))),
            _ => internal_err!("HintExec has exactly one child"),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        Ok(Arc::new(self.hint.statistics(&self.schema())))
    }
}

/// Removes every [`HintExec`] once the join strategies are chosen.
pub fn strip_hints(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        Ok(match node.downcast_ref::<HintExec>() {
            Some(hint) => Transformed::yes(Arc::clone(&hint.input)),
            None => Transformed::no(node),
        })
    })
    .map(|t| t.data)
}

/// Plans [`HintNode`]s as [`HintExec`]s.
#[derive(Debug, Default)]
struct HintPlanner;

#[async_trait]
impl ExtensionPlanner for HintPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(hint) = node.as_any().downcast_ref::<HintNode>() else {
            return Ok(None);
        };
        match physical_inputs {
            [input] => Ok(Some(Arc::new(HintExec::new(hint.hint, Arc::clone(input))))),
            _ => internal_err!("a join hint has exactly one input"),
        }
    }
}

/// DataFusion's query planner, plus join hints.
#[derive(Debug, Default)]
pub struct MinisparkQueryPlanner;

#[async_trait]
impl QueryPlanner for MinisparkQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(HintPlanner)])
            .create_physical_plan(logical_plan, session)
            .await
    }
}
