//! Key salting: spreading one hot key over several partitions.
//!
//! A shuffle sends every row of a key to the same partition. When one key
//! holds a quarter of a table, so does one reduce task. Salting gives each
//! row of a hot key a random *salt* in `[0, S)` on the big side, replicates
//! the other side's rows of that key once per salt, and joins on
//! `(key, salt)`: the hot key now spreads over up to `S` partitions, and
//! every other key is untouched (salt 0 on both sides).
//!
//! ```text
//!   events (big, salted)              titles (small, replicated)
//!   title 145, salt = rand() % 4      title 145 -> salts 0, 1, 2, 3
//!   title 7,   salt = 0               title 7   -> salt 0
//!
//!   JOIN ON e.title_id = t.title_id AND e.salt = t.salt
//!   -> (145, 0) (145, 1) (145, 2) (145, 3) hash to different partitions
//! ```
//!
//! The S salt values of a key are not simply `0..S`: they are picked so
//! that each `(key, salt)` hashes to its own shuffle partition
//! ([`spread_salts`]); with `0..S`, two pieces often share one.
//!
//! Each big-side row meets exactly the small-side rows of its key (one copy
//! each, the copy with its salt), so the answer does not change, for any join
//! type whose replicated side is neither preserved (outer) nor the side a
//! semi/anti join returns: the big side of INNER, LEFT, LEFT SEMI and LEFT
//! ANTI joins may be the left, of INNER, RIGHT, RIGHT SEMI and RIGHT ANTI
//! joins the right.
//!
//! A skewed GROUP BY is salted the same way, in two phases: aggregate over
//! `(key, salt)`, then combine the pieces over `key` (see [`salt_aggregate`]).
//!
//! Which keys are hot is measured: the driver runs a sampling pass over the
//! big side first (see [`sample_plan`]), unless the `SKEW` hint lists them.
//! This module holds the plan rewrites; the driver decides and runs them.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, Int32Array, Int64Array, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{
    Column, DFSchemaRef, JoinType, Result, ScalarValue, internal_err, plan_err,
};
use datafusion::functions::expr_fn::random;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::functions_nested::expr_fn::make_array;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{
    Expr, Extension, Join, LogicalPlan, LogicalPlanBuilder, Projection, UserDefinedLogicalNodeCore,
    cast, col, lit, when,
};
use datafusion::sql::parser::Statement as DFStatement;

use crate::hints::{collect_hint_texts, parse_hint_text, relation_name, wrap_named_relations};

/// `/*+ SKEW('t', 'col') */` or `/*+ SKEW('t', 'col', (v1, v2)) */`: the
/// relation `t` is skewed on `col`, at the listed values (or at the values
/// a sampling pass finds).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct SkewHint {
    pub relation: String,
    pub column: String,
    pub values: Vec<String>,
}

impl fmt::Display for SkewHint {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.relation.is_empty() {
            // From the DataFrame API: df.skewed("col").
            write!(f, "skewed('{}'", self.column)?;
        } else {
            write!(f, "SKEW('{}', '{}'", self.relation, self.column)?;
        }
        if !self.values.is_empty() {
            write!(f, ", ({})", self.values.join(", "))?;
        }
        write!(f, ")")
    }
}

/// The `SKEW` hints of a statement (Databricks' syntax).
pub fn skew_hints(statement: &DFStatement) -> Result<Vec<SkewHint>> {
    let mut texts = vec![];
    collect_hint_texts(statement, &mut texts);
    let mut hints = vec![];
    for text in texts {
        for (name, args) in parse_hint_text(&text)? {
            if !name.eq_ignore_ascii_case("SKEW") {
                continue;
            }
            let mut args = args.into_iter();
            let (Some(relation), Some(column)) = (args.next(), args.next()) else {
                return plan_err!(
                    "hint SKEW needs a relation and a column, e.g. SKEW('events', 'title_id'), \
                     optionally with hot values: SKEW('events', 'title_id', (145, 12))"
                );
            };
            hints.push(SkewHint {
                relation,
                column,
                values: args.collect(),
            });
        }
    }
    Ok(hints)
}

/// A logical node marking its input as skewed on a column ([`SkewHint`]).
/// It changes nothing by itself; the driver reads it, then removes it
/// ([`strip_skew_nodes`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct SkewNode {
    pub hint: SkewHint,
    pub input: LogicalPlan,
}

impl SkewNode {
    /// `plan` marked as skewed by `hint`.
    pub fn wrap(plan: LogicalPlan, hint: SkewHint) -> LogicalPlan {
        LogicalPlan::Extension(Extension {
            node: Arc::new(SkewNode { hint, input: plan }),
        })
    }
}

impl SkewHint {
    /// The hint as one line of text, for the logical plan codec.
    pub fn encode(&self) -> String {
        let mut fields = vec![self.relation.as_str(), self.column.as_str()];
        fields.extend(self.values.iter().map(String::as_str));
        fields.join("\u{1f}")
    }

    /// The inverse of [`SkewHint::encode`].
    pub fn decode(text: &str) -> Option<Self> {
        let mut fields = text.split('\u{1f}').map(str::to_string);
        Some(Self {
            relation: fields.next()?,
            column: fields.next()?,
            values: fields.collect(),
        })
    }
}

impl UserDefinedLogicalNodeCore for SkewNode {
    fn name(&self) -> &str {
        "Skew"
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
        write!(f, "{}", self.hint)
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        match inputs.pop() {
            Some(input) if inputs.is_empty() => Ok(Self {
                hint: self.hint.clone(),
                input,
            }),
            _ => internal_err!("a skew hint has exactly one input"),
        }
    }
}

/// Wraps every relation a `SKEW` hint names in a [`SkewNode`]; a hint naming
/// no relation of the plan is an error.
pub fn apply_skew_hints(plan: LogicalPlan, hints: &[SkewHint]) -> Result<LogicalPlan> {
    let targets: Vec<&str> = hints.iter().map(|h| h.relation.as_str()).collect();
    let (plan, unused) = wrap_named_relations(plan, &targets, |i, node| {
        SkewNode::wrap(node, hints[i].clone())
    })?;
    if let Some(i) = unused {
        return plan_err!(
            "{} names '{}', but the query has no table or alias of that name",
            hints[i],
            hints[i].relation
        );
    }
    Ok(plan)
}

/// The plan without its [`SkewNode`]s.
pub fn strip_skew_nodes(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up(|node| match skew_node(&node) {
        Some(skew) => Ok(Transformed::yes(skew.input.clone())),
        None => Ok(Transformed::no(node)),
    })
    .map(|t| t.data)
}

/// True when the plan carries a `SKEW` hint.
pub fn has_skew_hints(plan: &LogicalPlan) -> Result<bool> {
    plan.exists(|p| Ok(skew_node(p).is_some()))
}

/// The plan as a [`SkewNode`], if it is one.
pub fn skew_node(plan: &LogicalPlan) -> Option<&SkewNode> {
    match plan {
        LogicalPlan::Extension(e) => e.node.as_any().downcast_ref::<SkewNode>(),
        _ => None,
    }
}

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

/// The relation a `SKEW` hint marks, under `plan`, and its hinted column:
/// what the sampling pass reads for a hint (the relation alone, not the
/// joins above it).
pub fn hinted_relation(plan: &LogicalPlan, hint: &SkewHint) -> Option<(LogicalPlan, Expr)> {
    let mut found = None;
    let _ = plan.apply(|p| {
        if let Some(skew) = skew_node(p)
            && skew.hint == *hint
            && let Ok((qualifier, field)) = skew
                .input
                .schema()
                .qualified_field_with_unqualified_name(&hint.column)
        {
            let column = Column::new(qualifier.cloned(), field.name());
            found = Some((skew.input.clone(), Expr::Column(column)));
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// A short name for a join input, for EXPLAIN: its first alias or table.
pub fn describe_relation(plan: &LogicalPlan) -> String {
    let mut name = None;
    let _ = plan.apply(|p| {
        name = relation_name(p);
        Ok(if name.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    name.unwrap_or_else(|| "subquery".to_string())
}

/// Left or right input of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    fn other(self) -> Self {
        match self {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }
}

/// The sides a join may salt (the other side is replicated): never a side
/// whose replicated rows would be emitted more than once.
pub fn saltable_sides(join_type: JoinType) -> &'static [Side] {
    match join_type {
        JoinType::Inner => &[Side::Left, Side::Right],
        JoinType::Left | JoinType::LeftSemi | JoinType::LeftAnti => &[Side::Left],
        JoinType::Right | JoinType::RightSemi | JoinType::RightAnti => &[Side::Right],
        _ => &[],
    }
}

/// An equi-join of the plan, in the order [`salt_joins`] visits them.
#[derive(Debug, Clone)]
pub struct JoinSite {
    pub ordinal: usize,
    pub join_type: JoinType,
    pub null_aware: bool,
    pub left: LogicalPlan,
    pub right: LogicalPlan,
    pub on: Vec<(Expr, Expr)>,
}

impl JoinSite {
    pub fn input(&self, side: Side) -> &LogicalPlan {
        match side {
            Side::Left => &self.left,
            Side::Right => &self.right,
        }
    }

    /// The join keys of one side.
    pub fn keys(&self, side: Side) -> Vec<Expr> {
        self.on
            .iter()
            .map(|(l, r)| match side {
                Side::Left => l.clone(),
                Side::Right => r.clone(),
            })
            .collect()
    }

    /// The `SKEW` hints under one side whose column is one of its join
    /// keys, with the key's position.
    pub fn hints(&self, side: Side) -> Vec<(usize, SkewHint)> {
        let mut out = vec![];
        let keys = self.keys(side);
        let _ = self.input(side).apply(|p| {
            if let Some(skew) = skew_node(p) {
                for (i, key) in keys.iter().enumerate() {
                    if key_column_is(key, &skew.hint.column) {
                        out.push((i, skew.hint.clone()));
                    }
                }
            }
            Ok(TreeNodeRecursion::Continue)
        });
        out
    }
}

/// True when `key` is the column `name` (possibly cast by type coercion).
fn key_column_is(key: &Expr, name: &str) -> bool {
    match key {
        Expr::Column(c) => c.name.eq_ignore_ascii_case(name),
        Expr::Cast(c) => key_column_is(&c.expr, name),
        Expr::TryCast(c) => key_column_is(&c.expr, name),
        _ => false,
    }
}

/// Every equi-join of `plan`, children before parents.
pub fn join_sites(plan: &LogicalPlan) -> Result<Vec<JoinSite>> {
    let mut sites = vec![];
    numbered_rewrite(plan.clone(), is_join, |ordinal, node| {
        if let LogicalPlan::Join(join) = &node {
            sites.push(JoinSite {
                ordinal,
                join_type: join.join_type,
                null_aware: join.null_aware,
                left: join.left.as_ref().clone(),
                right: join.right.as_ref().clone(),
                on: join.on.clone(),
            });
        }
        Ok(Transformed::no(node))
    })?;
    Ok(sites)
}

fn is_join(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Join(_))
}

fn is_aggregate(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Aggregate(_))
}

/// Rewrites with `f` every node `pick` selects, children before parents,
/// passing each its ordinal among them. Sites are numbered by it when they
/// are listed and found by it again when they are rewritten, so the two
/// always agree.
fn numbered_rewrite(
    plan: LogicalPlan,
    pick: impl Fn(&LogicalPlan) -> bool,
    mut f: impl FnMut(usize, LogicalPlan) -> Result<Transformed<LogicalPlan>>,
) -> Result<LogicalPlan> {
    let mut ordinal = 0;
    plan.transform_up(|node| {
        if !pick(&node) {
            return Ok(Transformed::no(node));
        }
        ordinal += 1;
        f(ordinal - 1, node)
    })
    .map(|t| t.data)
}

/// One hot key and the salts it gets.
#[derive(Debug, Clone, PartialEq)]
pub struct HotValue {
    /// One value per salted key column.
    pub key: Vec<ScalarValue>,
    /// The salt values: `0..S`, or values picked so that each `(key, salt)`
    /// lands in its own shuffle partition ([`spread_salts`]).
    pub salts: Vec<i32>,
    /// Share of the sampled rows, when measured.
    pub share: Option<f64>,
}

impl HotValue {
    pub fn new(key: Vec<ScalarValue>, buckets: usize, share: Option<f64>) -> Self {
        Self {
            key,
            salts: (0..buckets as i32).collect(),
            share,
        }
    }
}

/// Picks each hot key's salt values so that its `(key, salt)` pieces hash
/// (Spark's Murmur3, as the shuffle does) to different partitions, the
/// least loaded first: with salts `0..S`, two pieces of the same key land
/// in one partition about `S / N` of the time. `others` are the sampled
/// keys that stay unsalted (salt 0) with their shares: their partitions
/// count as loaded. Keys are all the shuffle's keys; hot keys hottest
/// first.
pub fn spread_salts(
    hot: &mut [HotValue],
    others: &[(Vec<ScalarValue>, f64)],
    partitions: usize,
) -> Result<()> {
    use minispark_functions::hash::spark_murmur3::partition_ids;
    const TRIES_PER_PARTITION: i32 = 16;
    let n = partitions.max(1);
    let mut load = vec![0.0f64; n];
    for (key, share) in others {
        let mut columns = key
            .iter()
            .map(|v| v.to_array_of_size(1))
            .collect::<Result<Vec<_>>>()?;
        columns.push(Arc::new(Int32Array::from(vec![0])));
        let (mut hashes, mut ids) = (vec![], vec![]);
        partition_ids(&columns, 1, n, &mut hashes, &mut ids)?;
        load[ids[0] as usize] += share;
    }
    for h in hot.iter_mut() {
        let buckets = h.salts.len().min(n);
        let candidates: Vec<i32> = (0..TRIES_PER_PARTITION * n as i32).collect();
        let mut columns = h
            .key
            .iter()
            .map(|v| v.to_array_of_size(candidates.len()))
            .collect::<Result<Vec<_>>>()?;
        columns.push(Arc::new(Int32Array::from(candidates.clone())));
        let (mut hashes, mut ids) = (vec![], vec![]);
        partition_ids(&columns, candidates.len(), n, &mut hashes, &mut ids)?;
        // The first salt reaching each partition.
        let mut first: Vec<Option<i32>> = vec![None; n];
        for (salt, p) in candidates.iter().zip(&ids) {
            first[*p as usize].get_or_insert(*salt);
        }
        let mut reachable: Vec<usize> = (0..n).filter(|p| first[*p].is_some()).collect();
        reachable.sort_by(|a, b| load[*a].total_cmp(&load[*b]).then(a.cmp(b)));
        let piece = h.share.unwrap_or(1.0) / buckets as f64;
        h.salts = reachable
            .into_iter()
            .take(buckets)
            .map(|p| {
                load[p] += piece;
                first[p].expect("reachable partitions have a salt")
            })
            .collect();
    }
    Ok(())
}

impl fmt::Display for HotValue {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let key: Vec<String> = self.key.iter().map(ScalarValue::to_string).collect();
        if key.len() == 1 {
            write!(f, "{}", key[0])?;
        } else {
            write!(f, "({})", key.join(", "))?;
        }
        if let Some(share) = self.share {
            write!(f, " ({:.1}%)", share * 100.0)?;
        }
        write!(f, " x{}", self.salts.len())
    }
}

/// What to salt in one join.
#[derive(Debug, Clone)]
pub struct SaltedJoin {
    pub ordinal: usize,
    /// The big side, whose hot rows get salts.
    pub side: Side,
    /// Positions in the join's `on` list of the salted key columns.
    pub keys: Vec<usize>,
    pub hot: Vec<HotValue>,
}

/// Rewrites the joins of `plan` listed in `salted` to join on `(key, salt)`.
/// Join ordinals are those of [`join_sites`].
pub fn salt_joins(plan: LogicalPlan, salted: &[SaltedJoin]) -> Result<LogicalPlan> {
    if salted.is_empty() {
        return Ok(plan);
    }
    numbered_rewrite(plan, is_join, |ordinal, node| {
        match (node, salted.iter().find(|s| s.ordinal == ordinal)) {
            (LogicalPlan::Join(join), Some(s)) if !s.hot.is_empty() => {
                Ok(Transformed::yes(salt_join(join, s)?))
            }
            (node, _) => Ok(Transformed::no(node)),
        }
    })
}

/// `CASE WHEN keys = hot1 THEN then(hot1) ... ELSE otherwise END`.
fn case_over_hot(
    keys: &[Expr],
    hot: &[HotValue],
    then: impl Fn(&HotValue) -> Result<Expr>,
    otherwise: Expr,
) -> Result<Expr> {
    let condition = |h: &HotValue| {
        keys.iter()
            .zip(&h.key)
            .map(|(k, v)| k.clone().eq(lit(v.clone())))
            .reduce(Expr::and)
            .expect("a hot key has at least one column")
    };
    let mut case = when(condition(&hot[0]), then(&hot[0])?);
    for h in &hot[1..] {
        case = case.when(condition(h), then(h)?);
    }
    case.otherwise(otherwise)
}

/// One of a hot key's salts per row: `salt_pick([s0, s1, ..], index)`
/// ([`minispark_functions::salt`]), at random when `index` is `None`.
fn pick_salt(hot: &HotValue, index: Option<Expr>) -> Result<Expr> {
    let salts = make_array(hot.salts.iter().copied().map(lit).collect());
    let mut args = vec![salts];
    args.extend(index);
    Ok(minispark_functions::salt::salt_pick_udf().call(args))
}

/// `plan` with one more column, `expr AS name`.
fn with_column(plan: LogicalPlan, expr: Expr, name: &str) -> Result<LogicalPlan> {
    let mut exprs: Vec<Expr> = plan
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    exprs.push(expr.alias(name));
    LogicalPlanBuilder::from(plan).project(exprs)?.build()
}

fn salt_join(join: Join, salted: &SaltedJoin) -> Result<LogicalPlan> {
    let keys = |side: Side| -> Vec<Expr> {
        salted
            .keys
            .iter()
            .map(|&i| match side {
                Side::Left => join.on[i].0.clone(),
                Side::Right => join.on[i].1.clone(),
            })
            .collect()
    };
    let name = |side: Side| format!("__salt_{}_{side:?}", salted.ordinal).to_lowercase();
    let input = |side: Side| match side {
        Side::Left => join.left.as_ref().clone(),
        Side::Right => join.right.as_ref().clone(),
    };
    let big = salted.side;
    let small = big.other();

    // Big side: a hot row draws one of its key's salts at random; other
    // rows get 0.
    let salts = |h: &HotValue| make_array(h.salts.iter().copied().map(lit).collect());
    let big_salt = case_over_hot(&keys(big), &salted.hot, |h| pick_salt(h, None), lit(0i32))?;
    let big_plan = with_column(input(big), big_salt, &name(big))?;

    // Small side: a hot key's rows once per salt, other rows once (salt 0).
    let small_salts = case_over_hot(
        &keys(small),
        &salted.hot,
        |h| Ok(salts(h)),
        make_array(vec![lit(0i32)]),
    )?;
    let small_plan = with_column(input(small), small_salts, &name(small))?;
    let small_plan = LogicalPlanBuilder::from(small_plan)
        .unnest_column(name(small))?
        .build()?;

    // The replicated side goes first, as the hash join's build side: its
    // unnest hides its size from DataFusion's join selection, which would
    // otherwise build the hash table from the big side. A big left side
    // therefore swaps the join (LEFT becomes RIGHT, ...); the projection
    // below restores the column order.
    let mut on: Vec<(Expr, Expr)> = match big {
        Side::Left => join
            .on
            .iter()
            .map(|(l, r)| (r.clone(), l.clone()))
            .collect(),
        Side::Right => join.on.clone(),
    };
    on.push((
        Expr::Column(Column::from_name(name(small))),
        Expr::Column(Column::from_name(name(big))),
    ));
    let join_type = match big {
        Side::Left => join.join_type.swap(),
        Side::Right => join.join_type,
    };
    let salted_join = LogicalPlan::Join(Join::try_new(
        Arc::new(small_plan),
        Arc::new(big_plan),
        on,
        join.filter.clone(),
        join_type,
        join.join_constraint,
        join.null_equality,
        join.null_aware,
    )?);
    // The join's own columns, without the salts.
    let columns = join
        .schema
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    Ok(LogicalPlan::Projection(Projection::try_new(
        columns,
        Arc::new(salted_join),
    )?))
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

/// A GROUP BY of the plan, in the order [`salt_aggregates`] visits them.
#[derive(Debug, Clone)]
pub struct AggregateSite {
    pub ordinal: usize,
    pub input: LogicalPlan,
    pub group: Vec<Expr>,
    pub aggregates: Vec<Expr>,
}

/// How an aggregate is computed in two phases: per (key, salt) piece,
/// then over the pieces of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TwoPhase {
    /// count -> sum of counts
    Count,
    /// sum -> sum of sums
    Sum,
    Min,
    Max,
    /// avg -> sum of sums / sum of counts
    Avg,
    /// count(DISTINCT x), salted by x: the pieces hold disjoint values of
    /// x, so the distinct counts add up.
    CountDistinct,
}

/// The aggregate function under an alias, with its two-phase form.
fn two_phase(
    expr: &Expr,
    input: &LogicalPlan,
) -> std::result::Result<(TwoPhase, Vec<Expr>), String> {
    use datafusion::logical_expr::ExprSchemable;
    use datafusion::logical_expr::expr::AggregateFunction;
    let expr = match expr {
        Expr::Alias(a) => a.expr.as_ref(),
        e => e,
    };
    let Expr::AggregateFunction(AggregateFunction { func, params }) = expr else {
        return Err(format!("{expr} is not a plain aggregate"));
    };
    if params.filter.is_some() || !params.order_by.is_empty() {
        return Err(format!("{expr} has a FILTER or ORDER BY"));
    }
    let name = func.name().to_ascii_lowercase();
    let kind = match (name.as_str(), params.distinct) {
        ("count", false) => TwoPhase::Count,
        ("sum", false) => TwoPhase::Sum,
        ("min", _) => TwoPhase::Min,
        ("max", _) => TwoPhase::Max,
        ("avg", false) => TwoPhase::Avg,
        ("count", true) if params.args.len() == 1 => TwoPhase::CountDistinct,
        _ => {
            return Err(format!(
                "{expr} cannot be combined from pieces (count, sum, min, max, avg and \
                 count(DISTINCT x) can)"
            ));
        }
    };
    if kind == TwoPhase::Avg {
        let t = params.args[0]
            .get_type(input.schema())
            .map_err(|e| e.to_string())?;
        if !(t.is_integer() || t.is_floating()) {
            return Err(format!(
                "{expr}: an average of {t} is only combined exactly for integers and floats"
            ));
        }
    }
    Ok((kind, params.args.clone()))
}

impl AggregateSite {
    /// True when an aggregate is a `DISTINCT` one: partial aggregation keeps
    /// every distinct value, so a hot key stays hot after it.
    pub fn has_distinct(&self) -> bool {
        self.aggregates
            .iter()
            .any(|e| matches!(two_phase(e, &self.input), Ok((TwoPhase::CountDistinct, _))))
    }

    /// Why the aggregates cannot be computed in two phases, if they cannot.
    pub fn check_saltable(&self) -> std::result::Result<(), String> {
        if self.group.is_empty() {
            return Err("there is no key to salt".into());
        }
        if self.group.iter().any(|g| matches!(g, Expr::GroupingSet(_))) {
            return Err("grouping sets are not salted".into());
        }
        let mut distinct_arg: Option<Expr> = None;
        for e in &self.aggregates {
            let (kind, args) = two_phase(e, &self.input)?;
            if kind == TwoPhase::CountDistinct {
                match &distinct_arg {
                    Some(a) if *a != args[0] => {
                        return Err(
                            "distinct counts of different columns cannot share one salt".into()
                        );
                    }
                    _ => distinct_arg = Some(args[0].clone()),
                }
            }
        }
        Ok(())
    }

    /// The `SKEW` hints under the input whose column is a group key, with
    /// the key's position.
    pub fn hints(&self) -> Vec<(usize, SkewHint)> {
        let mut out = vec![];
        let _ = self.input.apply(|p| {
            if let Some(skew) = skew_node(p) {
                for (i, key) in self.group.iter().enumerate() {
                    if key_column_is(key, &skew.hint.column) {
                        out.push((i, skew.hint.clone()));
                    }
                }
            }
            Ok(TreeNodeRecursion::Continue)
        });
        out
    }
}

/// Every GROUP BY of `plan`, children before parents.
pub fn aggregate_sites(plan: &LogicalPlan) -> Result<Vec<AggregateSite>> {
    let mut sites = vec![];
    numbered_rewrite(plan.clone(), is_aggregate, |ordinal, node| {
        if let LogicalPlan::Aggregate(agg) = &node {
            sites.push(AggregateSite {
                ordinal,
                input: agg.input.as_ref().clone(),
                group: agg.group_expr.clone(),
                aggregates: agg.aggr_expr.clone(),
            });
        }
        Ok(Transformed::no(node))
    })?;
    Ok(sites)
}

/// What to salt in one GROUP BY.
#[derive(Debug, Clone)]
pub struct SaltedAggregate {
    pub ordinal: usize,
    /// Positions of the salted keys among the group keys.
    pub keys: Vec<usize>,
    pub hot: Vec<HotValue>,
}

/// Rewrites the GROUP BYs of `plan` listed in `salted` into two phases.
/// Ordinals are those of [`aggregate_sites`].
pub fn salt_aggregates(plan: LogicalPlan, salted: &[SaltedAggregate]) -> Result<LogicalPlan> {
    if salted.is_empty() {
        return Ok(plan);
    }
    numbered_rewrite(plan, is_aggregate, |ordinal, node| {
        match (node, salted.iter().find(|s| s.ordinal == ordinal)) {
            (LogicalPlan::Aggregate(agg), Some(s)) if !s.hot.is_empty() => {
                Ok(Transformed::yes(salt_aggregate(agg, s)?))
            }
            (node, _) => Ok(Transformed::no(node)),
        }
    })
}

/// A skewed GROUP BY in two phases:
///
/// ```text
///   Projection: the original columns, cast to their original types
///     Aggregate: group by key; combine the pieces (sum of counts, ...)
///       Aggregate: group by (key, salt); count, sum, min, max, count(DISTINCT x)
///         Projection: *, salt (hot keys: random, or from hash(x) for DISTINCT x)
/// ```
///
/// With a `COUNT(DISTINCT x)`, the salt is a function of `x`, so each value
/// of `x` lands in exactly one piece and the pieces' distinct counts add up.
pub fn salt_aggregate(
    agg: datafusion::logical_expr::Aggregate,
    salted: &SaltedAggregate,
) -> Result<LogicalPlan> {
    use datafusion::functions_aggregate::expr_fn::{count_distinct, max, min, sum};
    let input = agg.input.as_ref().clone();
    let mut kinds = vec![];
    for e in &agg.aggr_expr {
        match two_phase(e, &input) {
            Ok(k) => kinds.push(k),
            Err(why) => return plan_err!("cannot salt GROUP BY: {why}"),
        }
    }
    let distinct_arg = kinds
        .iter()
        .find(|(k, _)| *k == TwoPhase::CountDistinct)
        .map(|(_, args)| args[0].clone());

    // Phase 0: the salt column.
    let salt = format!("__salt_g{}", salted.ordinal);
    let keys: Vec<Expr> = salted
        .keys
        .iter()
        .map(|&i| agg.group_expr[i].clone())
        .collect();
    // With a distinct count, the salt follows hash(x): the same x, the
    // same piece. Otherwise at random.
    let index = |_: &HotValue| {
        distinct_arg.as_ref().map(|x| {
            cast(
                minispark_functions::hash::spark_murmur3::spark_hash_udf().call(vec![x.clone()]),
                DataType::Int64,
            )
        })
    };
    let salt_expr = case_over_hot(&keys, &salted.hot, |h| pick_salt(h, index(h)), lit(0i32))?;
    let input = with_column(input, salt_expr, &salt)?;

    // Phase 1: per (key, salt).
    let group_name = |i: usize| format!("__g{i}");
    let piece = |i: usize, part: &str| format!("__p{i}{part}");
    let mut group1: Vec<Expr> = agg
        .group_expr
        .iter()
        .enumerate()
        .map(|(i, g)| g.clone().alias(group_name(i)))
        .collect();
    group1.push(col(salt.as_str()));
    let mut aggs1 = vec![];
    for (i, (kind, args)) in kinds.iter().enumerate() {
        let arg = args.first().cloned().unwrap_or_else(|| lit(1i64));
        match kind {
            TwoPhase::Count => aggs1.push(count(arg).alias(piece(i, ""))),
            TwoPhase::Sum => aggs1.push(sum(arg).alias(piece(i, ""))),
            TwoPhase::Min => aggs1.push(min(arg).alias(piece(i, ""))),
            TwoPhase::Max => aggs1.push(max(arg).alias(piece(i, ""))),
            TwoPhase::Avg => {
                aggs1.push(sum(cast(arg.clone(), DataType::Float64)).alias(piece(i, "_sum")));
                aggs1.push(count(arg).alias(piece(i, "_count")));
            }
            TwoPhase::CountDistinct => aggs1.push(count_distinct(arg).alias(piece(i, ""))),
        }
    }
    let phase1 = LogicalPlanBuilder::from(input)
        .aggregate(group1, aggs1)?
        .build()?;

    // Phase 2: combine the pieces of each key.
    let group2: Vec<Expr> = (0..agg.group_expr.len())
        .map(|i| col(group_name(i).as_str()))
        .collect();
    let aggs2: Vec<Expr> = kinds
        .iter()
        .enumerate()
        .map(|(i, (kind, _))| {
            let p = col(piece(i, "").as_str());
            match kind {
                TwoPhase::Count | TwoPhase::Sum | TwoPhase::CountDistinct => sum(p),
                TwoPhase::Min => min(p),
                TwoPhase::Max => max(p),
                TwoPhase::Avg => {
                    sum(col(piece(i, "_sum").as_str()))
                        / cast(sum(col(piece(i, "_count").as_str())), DataType::Float64)
                }
            }
            .alias(format!("__f{i}"))
        })
        .collect();
    let phase2 = LogicalPlanBuilder::from(phase1)
        .aggregate(group2, aggs2)?
        .build()?;

    // The original columns, names and types.
    let groups = agg.group_expr.len();
    let columns = agg
        .schema
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            let value = if i < groups {
                col(group_name(i).as_str())
            } else {
                cast(
                    col(format!("__f{}", i - groups).as_str()),
                    field.data_type().clone(),
                )
            };
            value.alias_qualified(qualifier.cloned(), field.name())
        })
        .collect::<Vec<_>>();
    LogicalPlanBuilder::from(phase2).project(columns)?.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use minispark_functions::hash::spark_murmur3::partition_ids;

    fn hints_of(sql: &str) -> Result<Vec<SkewHint>> {
        let statements = datafusion::sql::parser::DFParser::parse_sql(sql)?;
        skew_hints(&statements[0])
    }

    #[test]
    fn skew_hints_with_and_without_values() {
        let got = hints_of(
            "SELECT /*+ BROADCAST(t) SKEW('events', 'title_id', (145, 12)) SKEW(u, k) */ 1",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                SkewHint {
                    relation: "events".into(),
                    column: "title_id".into(),
                    values: vec!["145".into(), "12".into()],
                },
                SkewHint {
                    relation: "u".into(),
                    column: "k".into(),
                    values: vec![],
                },
            ]
        );
        let err = hints_of("SELECT /*+ SKEW('events') */ 1").unwrap_err();
        assert!(
            err.to_string().contains("needs a relation and a column"),
            "{err}"
        );
    }

    /// Salts are picked so a hot key's pieces hash to different partitions,
    /// and two hot keys avoid each other's partitions while they can.
    #[test]
    fn spread_salts_land_in_distinct_partitions() {
        let n = 16;
        let mut hot = vec![
            HotValue::new(vec![ScalarValue::Int64(Some(145))], 6, Some(0.3)),
            HotValue::new(vec![ScalarValue::Int64(Some(7))], 4, Some(0.1)),
        ];
        spread_salts(&mut hot, &[], n).unwrap();
        let mut all = vec![];
        for h in &hot {
            assert_eq!(h.salts.len(), if h.share == Some(0.3) { 6 } else { 4 });
            let keys = h.key[0].to_array_of_size(h.salts.len()).unwrap();
            let salts: arrow::array::ArrayRef = Arc::new(Int32Array::from(h.salts.clone()));
            let (mut buf, mut ids) = (vec![], vec![]);
            partition_ids(&[keys, salts], h.salts.len(), n, &mut buf, &mut ids).unwrap();
            let mut distinct = ids.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), ids.len(), "{h:?} -> {ids:?}");
            all.extend(ids);
        }
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 10, "10 pieces, 10 partitions");

        // A big unsalted key's partition (salt 0) gets no piece.
        let other = vec![ScalarValue::Int64(Some(3))];
        let columns: Vec<arrow::array::ArrayRef> = vec![
            other[0].to_array_of_size(1).unwrap(),
            Arc::new(Int32Array::from(vec![0])),
        ];
        let (mut buf, mut busy) = (vec![], vec![]);
        partition_ids(&columns, 1, n, &mut buf, &mut busy).unwrap();
        let mut hot = vec![HotValue::new(
            vec![ScalarValue::Int64(Some(145))],
            8,
            Some(0.3),
        )];
        spread_salts(&mut hot, &[(other, 0.2)], n).unwrap();
        let keys = hot[0].key[0].to_array_of_size(8).unwrap();
        let salts: arrow::array::ArrayRef = Arc::new(Int32Array::from(hot[0].salts.clone()));
        let (mut buf, mut ids) = (vec![], vec![]);
        partition_ids(&[keys, salts], 8, n, &mut buf, &mut ids).unwrap();
        assert!(!ids.contains(&busy[0]), "{ids:?} avoid {busy:?}");
    }
}
