//! Key salting, the planner half: what a salted plan looks like.
//!
//! (When to salt, and which keys are hot from what sample, is the driver's
//! half: `minispark_driver::salting`. This half only rewrites plans it is
//! told to rewrite, and builds the sampling pass's plan.)
//!
//! A shuffle sends every row of a key to the same partition. When one key
//! holds a quarter of a table, so does one reduce task. Salting gives each
//! row of a hot key a random *salt* in `[0, S)` on the big side, replicates
//! the other side's rows of that key once per salt, and joins on
//! `(key, salt)`: the hot key now spreads over up to `S` partitions, and
//! every other key is untouched (salt 0 on both sides). Spark has no
//! automatic salting; this is the rewrite people write by hand there.
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
//! | file | what it holds |
//! |---|---|
//! | [`skew_hint`] | the `SKEW('t', 'col', (v1, v2))` hint: parsing it, and the [`SkewNode`] marking the hinted relation in a logical plan |
//! | [`join_rewrite`] | a join's salted form: the big side salted, the small side replicated per salt, joined on `(key, salt)` |
//! | [`group_by_rewrite`] | a GROUP BY's salted form: aggregated over `(key, salt)`, then the pieces combined over `key` |
//! | [`salts`] | which salt values a hot key gets (spread over distinct shuffle partitions) and how a row picks one |
//! | [`sample`] | the sampling pass's plan (the most frequent keys among a random fraction of rows) and reading its answer |
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
//! joins the right ([`saltable_sides`]).
//!
//! Joins and GROUP BYs are found by one numbered traversal
//! ([`join_sites`], [`aggregate_sites`]), and rewritten by the same one
//! ([`salt_joins`], [`salt_aggregates`]), so the driver's decisions, made
//! per site number, always land on the site they were made for.

pub mod group_by_rewrite;
pub mod join_rewrite;
pub mod salts;
pub mod sample;
pub mod skew_hint;

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};

pub use group_by_rewrite::{
    AggregateSite, SaltedAggregate, aggregate_sites, salt_aggregate, salt_aggregates,
};
pub use join_rewrite::{JoinSite, SaltedJoin, Side, join_sites, salt_joins, saltable_sides};
pub use salts::{HotValue, spread_salts};
pub use sample::{Sample, cheap_to_sample, read_sample, sample_plan};
pub use skew_hint::{
    SkewHint, SkewNode, apply_skew_hints, has_skew_hints, hinted_relation, skew_hints, skew_node,
    strip_skew_nodes,
};

use crate::hints::relation_name;

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

/// True when `key` is the column `name` (possibly cast by type coercion).
fn key_column_is(key: &Expr, name: &str) -> bool {
    match key {
        Expr::Column(c) => c.name.eq_ignore_ascii_case(name),
        Expr::Cast(c) => key_column_is(&c.expr, name),
        Expr::TryCast(c) => key_column_is(&c.expr, name),
        _ => false,
    }
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
