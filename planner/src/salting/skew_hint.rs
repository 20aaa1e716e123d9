//! The `SKEW` hint: `/*+ SKEW('t', 'col') */` or
//! `/*+ SKEW('t', 'col', (v1, v2)) */` (Databricks' syntax) says that
//! relation `t` is skewed on `col`, at the listed values or at values a
//! sampling pass will find.
//!
//! The hint is parsed from the SQL text ([`skew_hints`]), then the relation
//! it names is wrapped in a [`SkewNode`] ([`apply_skew_hints`]): a logical
//! node that changes nothing, which the driver reads when it decides what
//! to salt, then removes ([`strip_skew_nodes`]). DataFrames mark a column
//! with `df.skewed("col")`, which wraps the same node.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchemaRef, Result, internal_err, plan_err};
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::sql::parser::Statement as DFStatement;

use crate::hints::{collect_hint_texts, parse_hint_text, wrap_named_relations};

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
    // A hinted column the relation does not have cannot be salted: said,
    // not ignored.
    let mut missing = None;
    plan.apply(|p| {
        if let Some(skew) = skew_node(p) {
            let schema = skew.input.schema();
            if schema
                .qualified_field_with_unqualified_name(&skew.hint.column)
                .is_err()
            {
                let columns: Vec<String> =
                    schema.fields().iter().map(|f| f.name().clone()).collect();
                missing = Some((skew.hint.clone(), columns));
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if let Some((hint, columns)) = missing {
        let relation = if hint.relation.is_empty() {
            "the DataFrame".to_string()
        } else {
            format!("'{}'", hint.relation)
        };
        return plan_err!(
            "{hint} names column '{}', but {relation} has no column of that name (its columns: {})",
            hint.column,
            columns.join(", ")
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
