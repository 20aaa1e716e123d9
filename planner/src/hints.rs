//! Join strategy hints: "broadcast this side", "shuffle this side",
//! "sort-merge this join".
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
//! Shuffle and merge hints report a huge size instead, so the hinted side
//! is never broadcast.
//!
//! The stage cutter removes every `HintExec` (and shuffles a join that a
//! hint asks to shuffle, or turns a merge-hinted join into a sort-merge
//! join), so no hint reaches an executor. A broadcast hint on a side that must not be
//! broadcast (the preserved side of an outer join) is ignored by the stage
//! cutter, which turns such joins into shuffled ones: a hint never changes
//! an answer. When the two sides of a join carry different hints, a merge
//! hint wins over a shuffle hint, and both win over a broadcast hint.

use std::collections::HashSet;
use std::fmt;
use std::ops::ControlFlow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchemaRef, Result, Statistics, internal_err, plan_err};
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
use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{Query, SetExpr, Visit, Visitor};

/// What a hint asks of the join it feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum JoinHint {
    /// Collect this side whole and send it to every task of the other side,
    /// whatever its size (Spark's `BROADCAST`).
    Broadcast,
    /// Never broadcast this side: shuffle it by the join keys (Spark's
    /// `SHUFFLE_HASH`).
    Shuffle,
    /// Join with a sort-merge join: both sides shuffled by the join keys,
    /// sorted by them within each partition, then merged (Spark's `MERGE`,
    /// `SHUFFLE_MERGE`, `MERGEJOIN`). Builds no hash table.
    Merge,
}

impl JoinHint {
    pub fn name(&self) -> &'static str {
        match self {
            JoinHint::Broadcast => "broadcast",
            JoinHint::Shuffle => "shuffle",
            JoinHint::Merge => "merge",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "broadcast" => Some(JoinHint::Broadcast),
            "shuffle" => Some(JoinHint::Shuffle),
            "merge" => Some(JoinHint::Merge),
            _ => None,
        }
    }

    /// The size the hinted side reports to the join planner. Inexact, so
    /// no rule takes it for a fact (e.g. to answer `COUNT(*)`).
    fn statistics(&self, schema: &arrow::datatypes::Schema) -> Statistics {
        let (rows, bytes) = match self {
            // Under any threshold, even the (1, 1) of disabled broadcasts.
            JoinHint::Broadcast => (0, 0),
            // Far above any broadcast threshold, far from overflowing sums.
            JoinHint::Shuffle | JoinHint::Merge => (1 << 40, 1 << 50),
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

    pub fn hint(&self) -> JoinHint {
        self.hint
    }

    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
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

/// The hint on a join input, looking through operators with one input
/// (projections, filters, repartitions, merges) down to a [`HintExec`].
pub fn hint_on(plan: &Arc<dyn ExecutionPlan>) -> Option<JoinHint> {
    if let Some(hint) = plan.downcast_ref::<HintExec>() {
        return Some(hint.hint);
    }
    match plan.children().as_slice() {
        [only] => hint_on(only),
        _ => None,
    }
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

/// DataFusion's query planner, plus join hints and Spark's repartitions.
#[derive(Debug, Default)]
pub struct MinisparkQueryPlanner;

#[async_trait]
impl QueryPlanner for MinisparkQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // DISTRIBUTE BY, SORT BY, repartition hints and calls: see
        // `crate::repartition`.
        let shuffle_partitions =
            crate::config::minispark_config(session.config().options()).shuffle_partitions;
        let plan = crate::repartition::plan_repartitions(logical_plan.clone(), shuffle_partitions)?;
        DefaultPhysicalPlanner::with_extension_planners(vec![
            Arc::new(HintPlanner),
            Arc::new(crate::repartition::RepartitionPlanner),
        ])
        .create_physical_plan(&plan, session)
        .await
    }
}

/// Join hints written in SQL, Spark's way: `SELECT /*+ BROADCAST(t) */ ...`.
///
/// | hint | strategy |
/// |---|---|
/// | `BROADCAST(t)`, `BROADCASTJOIN(t)`, `MAPJOIN(t)` | broadcast `t` |
/// | `SHUFFLE_HASH(t)` | shuffle `t` by the join keys (never broadcast it) |
/// | `MERGE(t)`, `SHUFFLE_MERGE(t)`, `MERGEJOIN(t)` | sort-merge join: both sides shuffled and sorted by the join keys |
///
/// `t` names a relation of the statement: a table alias, or a table's
/// name. A hint applies wherever that relation appears in the statement.
pub fn sql_hints(statement: &DFStatement) -> Result<Vec<(JoinHint, String)>> {
    let mut texts = vec![];
    collect_hint_texts(statement, &mut texts);
    let mut hints = vec![];
    for text in texts {
        for (name, args) in parse_hint_text(&text)? {
            let hint = match name.to_ascii_uppercase().as_str() {
                "BROADCAST" | "BROADCASTJOIN" | "MAPJOIN" => JoinHint::Broadcast,
                "SHUFFLE_HASH" => JoinHint::Shuffle,
                "MERGE" | "SHUFFLE_MERGE" | "MERGEJOIN" => JoinHint::Merge,
                // Key salting: read by `crate::salting::skew_hints`.
                "SKEW" => continue,
                // Read by `crate::repartition::clauses`.
                upper if crate::repartition::clauses::REPARTITION_HINTS.contains(&upper) => {
                    continue;
                }
                _ => {
                    return plan_err!(
                        "unknown hint {name}; known hints: BROADCAST, BROADCASTJOIN, MAPJOIN, SHUFFLE_HASH, MERGE, SHUFFLE_MERGE, MERGEJOIN, SKEW, REPARTITION, REBALANCE, COALESCE, REPARTITION_BY_RANGE"
                    );
                }
            };
            if args.is_empty() {
                return plan_err!("hint {name} needs the relations it applies to, e.g. {name}(t)");
            }
            hints.extend(args.into_iter().map(|a| (hint, a)));
        }
    }
    Ok(hints)
}

/// Wraps every relation a hint names in a [`HintNode`]. A hint that names no
/// relation of the plan is an error (a misspelled alias would otherwise be
/// ignored in silence).
pub fn apply_hints(plan: LogicalPlan, hints: &[(JoinHint, String)]) -> Result<LogicalPlan> {
    let targets: Vec<&str> = hints.iter().map(|(_, name)| name.as_str()).collect();
    let (plan, unused) =
        wrap_named_relations(plan, &targets, |i, node| HintNode::wrap(node, hints[i].0))?;
    if let Some(i) = unused {
        let (hint, name) = &hints[i];
        return plan_err!(
            "{} hint names '{name}', but the query has no table or alias of that name",
            hint.name().to_uppercase()
        );
    }
    Ok(plan)
}

/// Wraps each relation (alias or table) named in `targets` with
/// `wrap(target index, relation)`, wherever it appears; returns the plan
/// and the first target that named no relation. Hints of every kind
/// ([`apply_hints`], [`crate::salting::apply_skew_hints`]) find their
/// relations this way.
pub(crate) fn wrap_named_relations(
    plan: LogicalPlan,
    targets: &[&str],
    wrap: impl Fn(usize, LogicalPlan) -> LogicalPlan,
) -> Result<(LogicalPlan, Option<usize>)> {
    if targets.is_empty() {
        return Ok((plan, None));
    }
    let mut used = vec![false; targets.len()];
    let plan = plan
        .transform_up(|node| {
            let Some(name) = relation_name(&node) else {
                return Ok(Transformed::no(node));
            };
            let mut node = node;
            let mut changed = false;
            for (i, target) in targets.iter().enumerate() {
                if target.eq_ignore_ascii_case(&name) {
                    used[i] = true;
                    node = wrap(i, node);
                    changed = true;
                }
            }
            Ok(if changed {
                Transformed::yes(node)
            } else {
                Transformed::no(node)
            })
        })?
        .data;
    Ok((plan, used.iter().position(|u| !u)))
}

/// The name a hint uses for a relation: its alias, or its table's name.
pub(crate) fn relation_name(plan: &LogicalPlan) -> Option<String> {
    match plan {
        LogicalPlan::SubqueryAlias(a) => Some(a.alias.table().to_string()),
        LogicalPlan::TableScan(s) => Some(s.table_name.table().to_string()),
        _ => None,
    }
}

pub(crate) fn collect_hint_texts(statement: &DFStatement, texts: &mut Vec<String>) {
    let mut collector = HintCollector { texts };
    match statement {
        DFStatement::Statement(s) => {
            let _ = s.visit(&mut collector);
        }
        DFStatement::Explain(e) => collect_hint_texts(&e.statement, collector.texts),
        DFStatement::CopyTo(c) => {
            if let CopyToSource::Query(q) = &c.source {
                let _ = q.visit(&mut collector);
            }
        }
        DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => {}
    }
}

struct HintCollector<'a> {
    texts: &'a mut Vec<String>,
}

impl Visitor for HintCollector<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        collect_from_set_expr(&query.body, self.texts);
        ControlFlow::Continue(())
    }
}

/// Hints of the SELECTs of a query body (nested queries are visited on
/// their own).
fn collect_from_set_expr(body: &SetExpr, texts: &mut Vec<String>) {
    match body {
        SetExpr::Select(select) => texts.extend(
            select
                .optimizer_hints
                .iter()
                .filter(|h| h.prefix.is_empty())
                .map(|h| h.text.clone()),
        ),
        SetExpr::SetOperation { left, right, .. } => {
            collect_from_set_expr(left, texts);
            collect_from_set_expr(right, texts);
        }
        _ => {}
    }
}

/// `BROADCAST(a, b) SHUFFLE_HASH(c)` -> [("BROADCAST", [a, b]), ("SHUFFLE_HASH", [c])].
pub(crate) fn parse_hint_text(text: &str) -> Result<Vec<(String, Vec<String>)>> {
    let mut hints = vec![];
    let mut rest = text.trim();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if name_end == 0 {
            return plan_err!("cannot read the hint '/*+ {text} */' at '{rest}'");
        }
        let name = rest[..name_end].to_string();
        rest = rest[name_end..].trim_start();
        let mut args = vec![];
        if let Some(inner) = rest.strip_prefix('(') {
            // The matching parenthesis: SKEW('t', 'k', (1, 2)) nests a list.
            let mut depth = 1;
            let Some(close) = inner.find(|c| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            }) else {
                return plan_err!("hint {name} in '/*+ {text} */' has no closing parenthesis");
            };
            args = inner[..close]
                .split(',')
                .map(|a| {
                    a.trim()
                        .trim_matches(|c| c == '(' || c == ')')
                        .trim()
                        .trim_matches(|c| c == '\'' || c == '"' || c == '`')
                })
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect();
            rest = inner[close + 1..].trim_start();
        }
        rest = rest.trim_start_matches(',').trim_start();
        hints.push((name, args));
    }
    Ok(hints)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints_of(sql: &str) -> Result<Vec<(JoinHint, String)>> {
        let statements = datafusion::sql::parser::DFParser::parse_sql(sql)?;
        sql_hints(&statements[0])
    }

    #[test]
    fn spark_hint_names_and_their_strategies() {
        let got = hints_of(
            "SELECT /*+ BROADCAST(t), MAPJOIN(u) SHUFFLE_HASH('v') */ * FROM a t JOIN b u ON t.x = u.x",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                (JoinHint::Broadcast, "t".to_string()),
                (JoinHint::Broadcast, "u".to_string()),
                (JoinHint::Shuffle, "v".to_string()),
            ]
        );
        // The sort-merge hint, by all three of Spark's names.
        let got = hints_of(
            "SELECT /*+ MERGE(t) SHUFFLE_MERGE(u), mergejoin(v) */ * FROM a t JOIN b u ON t.x = u.x",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                (JoinHint::Merge, "t".to_string()),
                (JoinHint::Merge, "u".to_string()),
                (JoinHint::Merge, "v".to_string()),
            ]
        );
        // In subqueries, CTEs, unions and under EXPLAIN too.
        let got = hints_of(
            "EXPLAIN WITH c AS (SELECT /*+ BROADCASTJOIN(x) */ 1 FROM x)
             SELECT * FROM c UNION ALL SELECT /*+ SHUFFLE_HASH(y) */ 1 FROM y",
        )
        .unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
    }

    #[test]
    fn bad_hints_are_named() {
        let err = hints_of("SELECT /*+ BRODCAST(t) */ 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown hint BRODCAST"), "{err}");
        assert!(err.contains("MERGE") && err.contains("SKEW"), "{err}");
        let err = hints_of("SELECT /*+ MERGE */ 1").unwrap_err().to_string();
        assert!(err.contains("MERGE needs the relations"), "{err}");
        let err = hints_of("SELECT /*+ BROADCAST */ 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs the relations"), "{err}");
        let err = hints_of("SELECT /*+ BROADCAST(t */ 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("closing parenthesis"), "{err}");
        // A plain comment is not a hint.
        assert!(hints_of("SELECT /* BROADCAST(t) */ 1").unwrap().is_empty());
    }

    #[test]
    fn hint_names_round_trip() {
        for hint in [JoinHint::Broadcast, JoinHint::Shuffle, JoinHint::Merge] {
            assert_eq!(JoinHint::from_name(hint.name()), Some(hint));
        }
        // Merge, like shuffle, is never small enough to broadcast.
        let schema = arrow::datatypes::Schema::empty();
        let stats = JoinHint::Merge.statistics(&schema);
        assert_eq!(stats.total_byte_size, Precision::Inexact(1 << 50));
    }
}
