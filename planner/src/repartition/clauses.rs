//! `DISTRIBUTE BY`, `SORT BY`, `CLUSTER BY` and the repartition hints, as
//! Spark SQL writes them, rewritten into SQL DataFusion plans.
//!
//! Run on a parsed statement before DataFusion plans it. For each `SELECT`:
//!
//! | written | rewritten |
//! |---|---|
//! | `CLUSTER BY e` | `DISTRIBUTE BY __minispark_repartition('CLUSTER BY', -1), e SORT BY e` |
//! | `/*+ REPARTITION(8, k) */` | `DISTRIBUTE BY __minispark_repartition('REPARTITION hint', 8), k` |
//! | `/*+ REPARTITION(8) */` | `DISTRIBUTE BY __minispark_repartition('REPARTITION hint', 8)` (round robin) |
//! | `/*+ REPARTITION(k) */`, `/*+ REBALANCE(k) */` | `DISTRIBUTE BY __minispark_repartition('<name> hint', -1), k` |
//! | `/*+ REPARTITION_BY_RANGE(8, k) */` | `DISTRIBUTE BY __minispark_repartition('REPARTITION_BY_RANGE hint', 8), k` (range, `k ASC NULLS FIRST`) |
//! | `/*+ COALESCE(4) */` | `DISTRIBUTE BY __minispark_repartition('COALESCE hint', 4)` (no shuffle) |
//! | `SORT BY e` | `ORDER BY __minispark_sort_by(), e` of the enclosing query |
//!
//! Hints with an argument of the wrong kind, and the clauses combined in
//! ways Spark refuses too, are errors that name the hint or clause.

use std::ops::ControlFlow;

use datafusion::common::{DataFusionError, Result, plan_datafusion_err, plan_err};
use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, OrderBy, OrderByExpr, OrderByKind, OrderByOptions, Query, SetExpr, VisitMut,
    VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::markers::{REPARTITION_MARKER, SORT_BY_MARKER};
use crate::hints::parse_hint_text;

/// The hint names this module handles (the join hints module skips them).
pub const REPARTITION_HINTS: &[&str] = &[
    "REPARTITION",
    "COALESCE",
    "REPARTITION_BY_RANGE",
    "REBALANCE",
];

/// Rewrites every `SELECT` of `statement` (see the module docs). Returns
/// true when a `SORT BY` (or `CLUSTER BY`) was rewritten: DataFusion's SQL
/// planner then has to keep the sorts of subqueries
/// (`datafusion.sql_parser.enable_subquery_sort_elimination = false`),
/// which it would otherwise drop as an `ORDER BY` without a `LIMIT`.
pub fn rewrite_statement(statement: &mut DFStatement) -> Result<bool> {
    let mut rewriter = ClauseRewriter { sorts: false };
    let flow = match statement {
        DFStatement::Statement(s) => s.visit(&mut rewriter),
        DFStatement::Explain(e) => return rewrite_statement(&mut e.statement),
        DFStatement::CopyTo(c) => match &mut c.source {
            CopyToSource::Query(q) => q.visit(&mut rewriter),
            CopyToSource::Relation(_) => ControlFlow::Continue(()),
        },
        DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => ControlFlow::Continue(()),
    };
    match flow {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(rewriter.sorts),
    }
}

struct ClauseRewriter {
    /// A SORT BY was rewritten.
    sorts: bool,
}

impl VisitorMut for ClauseRewriter {
    type Break = DataFusionError;

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<DataFusionError> {
        match rewrite_query(query) {
            Ok(sorts) => {
                self.sorts |= sorts;
                ControlFlow::Continue(())
            }
            Err(e) => ControlFlow::Break(e),
        }
    }
}

/// Rewrites one query; true when it had a SORT BY.
fn rewrite_query(query: &mut Query) -> Result<bool> {
    let select = match query.body.as_mut() {
        SetExpr::Select(select) => select,
        other => return check_set_operation(other).map(|()| false),
    };
    let hint = take_repartition_hint(&select.optimizer_hints)?;
    if !select.cluster_by.is_empty() {
        if !select.distribute_by.is_empty() || !select.sort_by.is_empty() {
            return plan_err!(
                "CLUSTER BY cannot be combined with DISTRIBUTE BY or SORT BY: CLUSTER BY e means DISTRIBUTE BY e SORT BY e"
            );
        }
        let exprs = std::mem::take(&mut select.cluster_by);
        select.sort_by = exprs
            .iter()
            .map(|e| OrderByExpr {
                expr: e.clone(),
                options: OrderByOptions {
                    asc: None,
                    nulls_first: None,
                },
                with_fill: None,
            })
            .collect();
        select.distribute_by = std::iter::once(repartition_marker("CLUSTER BY", None)?)
            .chain(exprs)
            .collect();
    }
    if let Some((origin, n, columns)) = hint {
        if !select.distribute_by.is_empty() {
            return plan_err!(
                "a {origin} and DISTRIBUTE BY or CLUSTER BY on one SELECT: use one of them"
            );
        }
        select.distribute_by = std::iter::once(repartition_marker(&origin, n)?)
            .chain(columns)
            .collect();
    }
    if !select.sort_by.is_empty() {
        if query.order_by.is_some() {
            return plan_err!(
                "SORT BY and ORDER BY cannot be used together: ORDER BY sorts the whole result, SORT BY each partition"
            );
        }
        let marker = OrderByExpr {
            expr: parse_expr(&format!("{SORT_BY_MARKER}()"))?,
            options: OrderByOptions {
                asc: None,
                nulls_first: None,
            },
            with_fill: None,
        };
        let mut exprs = vec![marker];
        exprs.append(&mut select.sort_by);
        query.order_by = Some(OrderBy {
            kind: OrderByKind::Expressions(exprs),
            interpolate: None,
        });
        return Ok(true);
    }
    Ok(false)
}

/// The SELECTs of a UNION (and other set operations) are planned without
/// an enclosing query of their own, where `SORT BY` and `CLUSTER BY` would go.
fn check_set_operation(body: &SetExpr) -> Result<()> {
    match body {
        SetExpr::Select(select) => {
            if !select.sort_by.is_empty() || !select.cluster_by.is_empty() {
                return plan_err!(
                    "SORT BY and CLUSTER BY inside a UNION branch are not supported: wrap the branch in a subquery, (SELECT ... SORT BY e)"
                );
            }
            Ok(())
        }
        SetExpr::SetOperation { left, right, .. } => {
            check_set_operation(left)?;
            check_set_operation(right)
        }
        _ => Ok(()),
    }
}

/// `__minispark_repartition('origin', n)` as SQL.
fn repartition_marker(origin: &str, n: Option<usize>) -> Result<SqlExpr> {
    let n = n.map(|n| n as i64).unwrap_or(-1);
    parse_expr(&format!(
        "{REPARTITION_MARKER}('{}', {n})",
        origin.replace('\'', "''")
    ))
}

fn parse_expr(sql: &str) -> Result<SqlExpr> {
    Parser::new(&GenericDialect)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| plan_datafusion_err!("cannot read '{sql}': {e}"))
}

/// The repartition hint among a SELECT's hints: (what asked, partition
/// count, columns). The join hints module skips these names.
#[allow(clippy::type_complexity)]
fn take_repartition_hint(
    hints: &[datafusion::sql::sqlparser::ast::OptimizerHint],
) -> Result<Option<(String, Option<usize>, Vec<SqlExpr>)>> {
    let mut found = None;
    for hint in hints.iter().filter(|h| h.prefix.is_empty()) {
        for (name, args) in parse_hint_text(&hint.text)? {
            let upper = name.to_ascii_uppercase();
            if !REPARTITION_HINTS.contains(&upper.as_str()) {
                continue;
            }
            if found.is_some() {
                return plan_err!("one SELECT takes one repartition hint; found a second: {upper}");
            }
            found = Some(read_hint(&upper, &args)?);
        }
    }
    Ok(found)
}

/// A repartition hint's arguments checked: (what asked, count, columns).
fn read_hint(name: &str, args: &[String]) -> Result<(String, Option<usize>, Vec<SqlExpr>)> {
    let count = |arg: &str| -> Option<Result<usize>> {
        let n: i64 = arg.parse().ok()?;
        Some(if n > 0 {
            Ok(n as usize)
        } else {
            plan_err!("{name} hint: the partition count must be positive, got {n}")
        })
    };
    let (n, rest) = match args.split_first() {
        Some((first, rest)) => match count(first) {
            Some(n) => (Some(n?), rest),
            None => (None, args),
        },
        None => (None, args),
    };
    let columns = rest
        .iter()
        .map(|a| {
            if count(a).is_some() || !is_column_name(a) {
                return plan_err!(
                    "{name} hint: '{a}' is not a column; write {name}(n, col, ...) with the partition count first and columns after"
                );
            }
            parse_expr(a)
        })
        .collect::<Result<Vec<_>>>()?;
    let origin = format!("{name} hint");
    match name {
        "REPARTITION" if n.is_none() && columns.is_empty() => plan_err!(
            "REPARTITION hint needs a partition count, columns or both: REPARTITION(8), REPARTITION(8, k) or REPARTITION(k)"
        ),
        "REPARTITION" | "REBALANCE" => Ok((origin, n, columns)),
        "COALESCE" => match (n, columns.is_empty()) {
            (Some(_), true) => Ok((origin, n, columns)),
            _ => plan_err!(
                "COALESCE hint takes one partition count and no columns, e.g. COALESCE(4); got COALESCE({})",
                args.join(", ")
            ),
        },
        _ => match columns.is_empty() {
            false => Ok((origin, n, columns)),
            true => plan_err!(
                "REPARTITION_BY_RANGE hint needs the columns to range-partition by, e.g. REPARTITION_BY_RANGE(8, k); got REPARTITION_BY_RANGE({})",
                args.join(", ")
            ),
        },
    }
}

/// `k`, `t.k`, `_k2`: a (qualified) column name.
fn is_column_name(arg: &str) -> bool {
    !arg.is_empty()
        && arg.split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_alphanumeric() || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> Result<String> {
        let mut statements = datafusion::sql::parser::DFParser::parse_sql(sql)?;
        let mut statement = statements.pop_front().unwrap();
        let sorts = rewrite_statement(&mut statement)?;
        assert_eq!(sorts, statement.to_string().contains("__minispark_sort_by"));
        Ok(statement.to_string())
    }

    #[test]
    fn cluster_by_is_distribute_by_and_sort_by() {
        let sql = rewritten("SELECT k, v FROM t CLUSTER BY k").unwrap();
        assert!(
            sql.contains("DISTRIBUTE BY __minispark_repartition('CLUSTER BY', -1), k"),
            "{sql}"
        );
        assert!(sql.contains("ORDER BY __minispark_sort_by(), k"), "{sql}");
        assert!(!sql.contains("SORT BY"), "{sql}");
    }

    #[test]
    fn hints_become_marked_distribute_by_lists() {
        let sql = rewritten("SELECT /*+ REPARTITION(8, k, t.v) */ * FROM t").unwrap();
        assert!(
            sql.contains("DISTRIBUTE BY __minispark_repartition('REPARTITION hint', 8), k, t.v"),
            "{sql}"
        );
        let sql = rewritten("SELECT /*+ REPARTITION(3) */ * FROM t").unwrap();
        assert!(
            sql.contains("DISTRIBUTE BY __minispark_repartition('REPARTITION hint', 3)"),
            "{sql}"
        );
        let sql = rewritten("SELECT /*+ REPARTITION_BY_RANGE(4, k, v) */ * FROM t").unwrap();
        assert!(
            sql.contains(
                "DISTRIBUTE BY __minispark_repartition('REPARTITION_BY_RANGE hint', 4), k, v"
            ),
            "{sql}"
        );
        let sql = rewritten("SELECT /*+ rebalance(k) */ * FROM t").unwrap();
        assert!(
            sql.contains("DISTRIBUTE BY __minispark_repartition('REBALANCE hint', -1), k"),
            "{sql}"
        );
        // Join hints are left to the join hints module.
        let sql = rewritten("SELECT /*+ BROADCAST(t) */ * FROM t").unwrap();
        assert!(!sql.contains("DISTRIBUTE BY"), "{sql}");
    }

    #[test]
    fn wrong_arguments_name_the_hint() {
        let cases = [
            (
                "SELECT /*+ REPARTITION */ * FROM t",
                "REPARTITION hint needs",
            ),
            (
                "SELECT /*+ REPARTITION(4, 5) */ * FROM t",
                "REPARTITION hint: '5' is not a column",
            ),
            ("SELECT /*+ REPARTITION(0) */ * FROM t", "must be positive"),
            (
                "SELECT /*+ COALESCE(k) */ * FROM t",
                "COALESCE hint takes one partition count",
            ),
            (
                "SELECT /*+ COALESCE(2, k) */ * FROM t",
                "COALESCE hint takes one partition count",
            ),
            (
                "SELECT /*+ REPARTITION_BY_RANGE(3) */ * FROM t",
                "REPARTITION_BY_RANGE hint needs the columns",
            ),
            (
                "SELECT /*+ REPARTITION_BY_RANGE(k, 3) */ * FROM t",
                "REPARTITION_BY_RANGE hint: '3' is not a column",
            ),
            (
                "SELECT /*+ REPARTITION_BY_RANGE(0, k) */ * FROM t",
                "must be positive",
            ),
            (
                "SELECT /*+ REPARTITION(2) REBALANCE(k) */ * FROM t",
                "one repartition hint",
            ),
            (
                "SELECT /*+ REPARTITION(2) */ * FROM t DISTRIBUTE BY k",
                "REPARTITION hint and DISTRIBUTE BY",
            ),
            (
                "SELECT * FROM t CLUSTER BY k SORT BY v",
                "CLUSTER BY cannot be combined",
            ),
            (
                "SELECT * FROM t SORT BY k ORDER BY k",
                "SORT BY and ORDER BY",
            ),
        ];
        for (sql, message) in cases {
            let err = rewritten(sql).unwrap_err().to_string();
            assert!(err.contains(message), "{sql}: {err}");
        }
    }
}
