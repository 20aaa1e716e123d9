//! A salted join: the big side's hot rows get a salt, the small side's
//! rows of hot keys are replicated once per salt, and the join runs on
//! `(key, salt)`.
//!
//! ```text
//!   Projection: the join's own columns (no salts)
//!     Join: small.k = big.k AND small.__salt = big.__salt
//!       Unnest: __salt                       small side: hot keys once per salt
//!         Projection: *, CASE k WHEN hot THEN [s0, s1, ..] ELSE [0] END AS __salt
//!       Projection: *, CASE k WHEN hot THEN salt_pick([s0, s1, ..]) ELSE 0 END AS __salt
//! ```
//!
//! Which joins may be salted on which side: [`saltable_sides`].

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, JoinType, Result};
use datafusion::functions_nested::expr_fn::make_array;
use datafusion::logical_expr::{Expr, Join, LogicalPlan, LogicalPlanBuilder, Projection, lit};

use super::salts::{HotValue, case_over_hot, pick_salt};
use super::skew_hint::{SkewHint, skew_node};
use super::{key_column_is, numbered_rewrite, with_column};

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
