//! sqllogictest files (`tests/slt/*.slt`) run against a real cluster.
//!
//! The expected results in the files are written by single-node DataFusion,
//! the oracle: `MINISPARK_SLT_COMPLETE=1 cargo test --test integration slt`
//! rewrites them with DataFusion's answers (the runner's complete mode);
//! a normal run checks that the cluster gives the same answers.

use std::path::PathBuf;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use datafusion::common::DataFusionError;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use minispark::driver::job::JobSession;
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::common::{cluster, session, timed};

/// The cluster under test.
struct ClusterDb {
    session: JobSession,
}

/// Single-node DataFusion with minispark's functions and catalogs.
struct OracleDb {
    ctx: SessionContext,
}

fn column_type(t: &DataType) -> DefaultColumnType {
    match t {
        t if t.is_integer() => DefaultColumnType::Integer,
        t if t.is_floating() || matches!(t, DataType::Decimal128(..)) => {
            DefaultColumnType::FloatingPoint
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DefaultColumnType::Text,
        _ => DefaultColumnType::Any,
    }
}

fn to_output(
    schema: &arrow::datatypes::Schema,
    batches: &[RecordBatch],
) -> DBOutput<DefaultColumnType> {
    if schema.fields().is_empty() {
        return DBOutput::StatementComplete(0);
    }
    let options = arrow::util::display::FormatOptions::default().with_null("NULL");
    let mut rows = vec![];
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for r in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| {
                        let s = f.value(r).to_string();
                        if s.is_empty() {
                            "(empty)".to_string()
                        } else {
                            s
                        }
                    })
                    .collect(),
            );
        }
    }
    DBOutput::Rows {
        types: schema
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect(),
        rows,
    }
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for ClusterDb {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DataFusionError> {
        let mut output = DBOutput::StatementComplete(0);
        for statement in minispark::driver::job::parse_script(sql)? {
            let result = self.session.execute_statement(statement).await?;
            let mut batches = vec![];
            let mut stream = result.stream;
            while let Some(b) = stream.next().await {
                batches.push(b?);
            }
            output = if result.returns_rows {
                to_output(&result.schema, &batches)
            } else {
                DBOutput::StatementComplete(0)
            };
        }
        Ok(output)
    }

    async fn shutdown(&mut self) {}

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for OracleDb {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DataFusionError> {
        let df = self.ctx.sql(sql).await?;
        let schema = df.schema().as_arrow().clone();
        let is_statement = matches!(
            df.logical_plan(),
            datafusion::logical_expr::LogicalPlan::Ddl(_)
                | datafusion::logical_expr::LogicalPlan::Statement(_)
        );
        let batches = df.collect().await?;
        if is_statement {
            return Ok(DBOutput::StatementComplete(0));
        }
        Ok(to_output(&schema, &batches))
    }

    async fn shutdown(&mut self) {}

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_files() {
    if std::env::var("MINISPARK_SLT_COMPLETE").is_ok() {
        for file in slt_files() {
            let mut runner = sqllogictest::Runner::new(|| async {
                let settings =
                    [("minispark.shuffle.partitions".to_string(), "3".to_string())].into();
                Ok(OracleDb {
                    ctx: minispark::planner::session::session_context(&settings)?,
                })
            });
            runner
                .update_test_file(
                    &file,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::default_column_validator,
                )
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
        return;
    }
    let cluster = cluster(2).await;
    for file in slt_files() {
        // Each file runs in a fresh session.
        let s = session(&cluster, &[("minispark.shuffle.partitions", "3")]);
        let mut runner = sqllogictest::Runner::new(move || {
            let session = s.clone();
            async move { Ok(ClusterDb { session }) }
        });
        timed(&file.display().to_string(), runner.run_file_async(&file))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}
