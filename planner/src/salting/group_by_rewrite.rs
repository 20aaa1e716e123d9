//! A salted GROUP BY: a skewed key aggregated in two phases, first over
//! `(key, salt)`, then the pieces combined over `key` (see
//! [`salt_aggregate`]).
//!
//! Only aggregates that can be combined from pieces qualify: count, sum,
//! min, max, avg and `count(DISTINCT x)` ([`AggregateSite::check_saltable`]).

use arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, plan_err};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, col, lit};

use super::salts::{HotValue, case_over_hot, pick_salt};
use super::skew_hint::{SkewHint, skew_node};
use super::{key_column_is, numbered_rewrite, with_column};

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

fn is_aggregate(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Aggregate(_))
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
