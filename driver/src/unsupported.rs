//! What minispark cannot do, refused by name before anything runs: SQL
//! statements it has no meaning for (indexes, transactions, changing rows
//! of files), file formats it does not read, and plans it cannot cut into
//! stages (recursive CTEs). Each refusal names the statement or feature in
//! the user's words and says what to do instead, where there is something.
//! Without these checks some of them succeed silently (`CREATE INDEX`,
//! `START TRANSACTION`, `COMMIT` do nothing and exit 0) and others fail
//! with DataFusion's internal errors.

use datafusion::common::tree_node::TreeNode;
use datafusion::common::{Result, plan_err};
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement;

/// Formats a table or COPY may name in `STORED AS`, checked against the
/// session's registered readers and writers.
const FORMATS: &[&str] = &["parquet", "csv", "json", "ndjson", "arrow", "avro"];

/// Refuses a statement minispark has no meaning for, before it is planned.
pub fn refuse_unsupported_statement(statement: &DFStatement) -> Result<()> {
    let DFStatement::Statement(s) = statement else {
        return Ok(());
    };
    let no_transactions = "minispark has no transactions: each statement of a job runs \
                           and is done on its own";
    let read_only = "minispark does not change the rows of a table's files; write a new \
                     version with COPY (SELECT ...) TO 'path' STORED AS PARQUET";
    let (what, why) = match s.as_ref() {
        Statement::CreateIndex { .. } => (
            "CREATE INDEX".to_string(),
            "minispark has no indexes: a table's files are scanned; laying them out \
             with COPY ... PARTITIONED BY (col) lets filters on col skip files",
        ),
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. } => (leading_keywords(s), no_transactions),
        Statement::Update { .. } => ("UPDATE".to_string(), read_only),
        Statement::Delete { .. } => ("DELETE".to_string(), read_only),
        Statement::Truncate { .. } => ("TRUNCATE".to_string(), read_only),
        Statement::Merge { .. } => ("MERGE".to_string(), read_only),
        Statement::AlterTable { .. } => (
            "ALTER TABLE".to_string(),
            "drop the table and CREATE EXTERNAL TABLE it again",
        ),
        Statement::CreateFunction { .. } => (
            "CREATE FUNCTION".to_string(),
            "minispark has its built-in functions only (DataFusion's and Spark's)",
        ),
        Statement::Grant { .. } | Statement::Revoke { .. } => (
            leading_keywords(s),
            "minispark has no users or privileges; a cluster secret guards a cluster",
        ),
        Statement::Use { .. } => (
            "USE".to_string(),
            "minispark has one catalog; name built-in tables in full, e.g. tpch.sf1.orders",
        ),
        _ => return Ok(()),
    };
    plan_err!("{what} is not supported: {why}")
}

/// The first keywords of a statement as written back ("START TRANSACTION",
/// "BEGIN", "COMMIT").
fn leading_keywords(s: &Statement) -> String {
    let text = s.to_string();
    let words: Vec<&str> = text
        .split_whitespace()
        .take_while(|w| w.chars().all(|c| c.is_ascii_uppercase()))
        .take(2)
        .collect();
    if words.is_empty() {
        text
    } else {
        words.join(" ")
    }
}

/// Refuses a `STORED AS` format no reader or writer is registered for,
/// listing the ones there are.
pub fn check_stored_as(statement: &DFStatement, state: &SessionState) -> Result<()> {
    let format = match statement {
        DFStatement::CreateExternalTable(t) => Some(t.file_type.as_str()),
        DFStatement::CopyTo(c) => c.stored_as.as_deref(),
        DFStatement::Explain(e) => return check_stored_as(&e.statement, state),
        _ => None,
    };
    let Some(format) = format else {
        return Ok(());
    };
    if state.get_file_format_factory(format).is_some() {
        return Ok(());
    }
    // Table formats (Iceberg, Delta: metadata or a log over files) are read
    // by a table factory, not written yet.
    let table_format = state.table_factories().contains_key(&format.to_uppercase());
    match statement {
        DFStatement::CreateExternalTable(_) if table_format => return Ok(()),
        DFStatement::CopyTo(_) if table_format => {
            return plan_err!(
                "COPY ... STORED AS {format}: minispark reads {} tables but does not write \
                 them yet; write PARQUET",
                format.to_uppercase()
            );
        }
        _ => {}
    }
    let known: Vec<String> = FORMATS
        .iter()
        .filter(|f| state.get_file_format_factory(f).is_some())
        .map(|f| f.to_uppercase())
        .collect();
    // Table formats: a table factory without a file format.
    let mut table_formats: Vec<&str> = state
        .table_factories()
        .keys()
        .map(|k| k.as_str())
        .filter(|k| state.get_file_format_factory(k).is_none())
        .collect();
    table_formats.sort();
    let tables = if table_formats.is_empty() {
        String::new()
    } else {
        format!(" and reads {} tables", table_formats.join(", "))
    };
    plan_err!(
        "STORED AS {format}: no such file format; minispark reads and writes {}{tables}",
        known.join(", ")
    )
}

/// Refuses plans the stage planner cannot run: a recursive CTE (`WITH
/// RECURSIVE`) iterates on one machine until a fixpoint, which has no
/// stages to cut.
pub fn refuse_unsupported_plan(plan: &LogicalPlan) -> Result<()> {
    let recursive = plan.exists(|p| Ok(matches!(p, LogicalPlan::RecursiveQuery(_))))?;
    if recursive {
        return plan_err!(
            "recursive CTEs (WITH RECURSIVE) are not supported by minispark: a recursion \
             runs on one machine until it stops and cannot be cut into stages; unroll it \
             into a fixed number of joins, or compute it before the job"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    fn refused(sql: &str) -> Option<String> {
        let statement = DFParser::parse_sql(sql).unwrap().pop_front().unwrap();
        refuse_unsupported_statement(&statement)
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn statements_without_meaning_are_refused_by_name() {
        assert!(
            refused("CREATE INDEX i ON t (a)")
                .unwrap()
                .contains("CREATE INDEX is not supported")
        );
        assert!(refused("BEGIN").unwrap().contains("BEGIN"));
        assert!(
            refused("START TRANSACTION")
                .unwrap()
                .contains("START TRANSACTION")
        );
        assert!(refused("COMMIT").unwrap().contains("transactions"));
        assert!(
            refused("UPDATE t SET a = 1")
                .unwrap()
                .contains("UPDATE is not supported")
        );
        assert!(refused("SELECT 1").is_none());
    }

    #[test]
    fn unknown_formats_list_the_known_ones() {
        let ctx = datafusion::prelude::SessionContext::new();
        let statement =
            DFParser::parse_sql("CREATE EXTERNAL TABLE t STORED AS PARQET LOCATION '/x'")
                .unwrap()
                .pop_front()
                .unwrap();
        let err = check_stored_as(&statement, &ctx.state())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PARQET") && err.contains("PARQUET, CSV, JSON"),
            "{err}"
        );
        let ok = DFParser::parse_sql("CREATE EXTERNAL TABLE t STORED AS parquet LOCATION '/x'")
            .unwrap()
            .pop_front()
            .unwrap();
        assert!(check_stored_as(&ok, &ctx.state()).is_ok());
    }
}
