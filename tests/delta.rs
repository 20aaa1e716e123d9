//! Delta Lake tables written by the `deltalake` Python package (delta-rs),
//! read by minispark on real executor processes: the latest version, time
//! travel by version and by timestamp, partition pruning and file skipping
//! by the log's statistics, the errors of a location that is not a Delta
//! table, and the 22 TPC-H queries over TPC-H SF0.1 as Delta tables.
//!
//! The tables are made by `tests/fixtures/delta_tables.py`, which also
//! writes the same rows as plain Parquet: DataFusion reading those is the
//! oracle. `.ci/install-test-deps` installs the package into
//! `${MINISPARK_TEST_DEPS:-$HOME/.cache/minispark-test-deps}/deltalake`;
//! without it these tests fail, naming what is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext, col};

use crate::common::{
    TPCH_TABLES, assert_result, cluster, oracle_sql, remote_session, row_count, run_sql, session,
    timed, tpch_sf0_1_dir,
};
use crate::processes::output_bounded;

/// Bound on the fixture script (TPC-H SF0.1 is ~100 MB of Parquet).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

pub(crate) fn deltalake_python() -> PathBuf {
    let deps = std::env::var_os("MINISPARK_TEST_DEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            Path::new(&home).join(".cache/minispark-test-deps")
        });
    let python = deps.join("deltalake/bin/python");
    assert!(
        python.exists(),
        "the deltalake Python package is not installed ({} is missing): run \
         .ci/install-test-deps, which installs deltalake and pyarrow from PyPI into {}",
        python.display(),
        deps.join("deltalake").display()
    );
    python
}

/// Runs the fixture script into `out` (with TPC-H from `tpch`); returns
/// the instant it recorded between the two commits of `events`.
fn write_fixtures(out: &Path, tpch: Option<&Path>) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/delta_tables.py");
    let mut command = Command::new(deltalake_python());
    command.arg(&script).arg(out).stdin(Stdio::null());
    if let Some(tpch) = tpch {
        command.arg(tpch);
    }
    let output = output_bounded(&mut command, SCRIPT_TIMEOUT, "the Delta fixture script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Delta fixture script failed ({}):\n{}\n{}",
        output.status,
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("the fixture script printed {line:?}: {e}"));
    value["between"].as_str().expect("between").to_string()
}

async fn oracle_over(file: &Path, sql: &str) -> crate::common::Expected {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    ctx.register_parquet("t", file.to_str().unwrap(), ParquetReadOptions::default())
        .await
        .unwrap();
    oracle_sql(&ctx, sql).await
}

/// The physical plan of `sql` as text.
async fn explain(session: &minispark::driver::job::JobSession, sql: &str) -> String {
    let batches = timed("EXPLAIN", run_sql(session, &format!("EXPLAIN {sql}")))
        .await
        .unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"));
    arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_tables_with_time_travel_and_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let between = write_fixtures(dir.path(), None);
    let events = dir.path().join("events");
    let sales = dir.path().join("sales");
    let expected = dir.path().join("expected");

    let cluster = cluster(2).await;
    let s = session(&cluster, &[("datafusion.execution.target_partitions", "2")]);
    let ddl = format!(
        "CREATE EXTERNAL TABLE events STORED AS DELTA LOCATION '{e}';
         CREATE EXTERNAL TABLE events_v0 STORED AS DELTA LOCATION '{e}' OPTIONS ('version' '0');
         CREATE EXTERNAL TABLE events_then STORED AS DELTA LOCATION '{e}' OPTIONS ('timestamp' '{between}');
         CREATE EXTERNAL TABLE events_v1 STORED AS DELTA LOCATION '{e}' OPTIONS ('versionAsOf' '1');
         CREATE EXTERNAL TABLE sales STORED AS DELTA LOCATION '{s}';",
        e = events.display(),
        s = sales.display(),
    );
    timed("creating the tables", run_sql(&s, &ddl))
        .await
        .unwrap();

    let all = "SELECT id, name, amount, day, at, score FROM t ORDER BY id";
    let v1 = oracle_over(&expected.join("events_v1.parquet"), all).await;
    let v0 = oracle_over(&expected.join("events_v0.parquet"), all).await;
    assert_eq!(v1.num_rows(), 5);
    assert_eq!(v0.num_rows(), 3);
    for (table, want) in [
        ("events", &v1),
        ("events_v1", &v1),
        ("events_v0", &v0),
        ("events_then", &v0),
    ] {
        let sql = all.replace("FROM t", &format!("FROM {table}"));
        let got = timed(table, run_sql(&s, &sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_result(
            &got,
            want,
            format!("{table} differs from what deltalake wrote"),
        );
    }
    // Aggregates and filters on the decimal, date and timestamp columns.
    let sql = "SELECT count(*) AS n, count(name) AS names, sum(amount) AS total, min(day) AS first_day, max(at) AS last_at FROM t \
               WHERE at >= TIMESTAMP '2000-01-01T00:00:00Z' OR at IS NULL";
    let got = timed(
        "aggregate",
        run_sql(&s, &sql.replace("FROM t", "FROM events")),
    )
    .await
    .unwrap();
    assert_result(
        &got,
        &oracle_over(&expected.join("events_v1.parquet"), sql).await,
        "an aggregate over events",
    );

    // Partition columns where the schema puts them (region is the middle
    // column), pruning by partition value and by the log's min/max.
    let sql = "SELECT * FROM t ORDER BY order_id";
    let got = timed("sales", run_sql(&s, &sql.replace("FROM t", "FROM sales")))
        .await
        .unwrap();
    let want = oracle_over(&expected.join("sales.parquet"), sql).await;
    assert_result(&got, &want, "sales differs from what deltalake wrote");
    assert_eq!(
        got[0]
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        ["order_id", "region", "qty"]
    );
    for (filter, kept, rows) in [
        ("region = 'eu'", "region=eu", 3),
        ("qty > 1000", "region=apac", 3),
        ("region = 'us' AND qty < 150", "region=us", 1),
    ] {
        let sql = format!("SELECT order_id, qty FROM sales WHERE {filter}");
        let plan = explain(&s, &sql).await;
        let files = plan.matches(".parquet").count();
        assert_eq!(files, 1, "{filter}: one file should be read:\n{plan}");
        assert!(
            plan.contains(kept),
            "{filter}: {kept} should be read:\n{plan}"
        );
        let got = timed(filter, run_sql(&s, &sql)).await.unwrap();
        assert_eq!(row_count(&got), rows, "{filter}");
    }
    let plan = explain(&s, "SELECT * FROM sales").await;
    assert_eq!(plan.matches(".parquet").count(), 3, "{plan}");

    // A log whose early commits were cleaned up: rebuilt from its Parquet
    // checkpoint (version 2) and the commit after it.
    let checkpointed = dir.path().join("checkpointed");
    let ddl = format!(
        "CREATE EXTERNAL TABLE checkpointed STORED AS DELTA LOCATION '{c}';
         CREATE EXTERNAL TABLE checkpointed_v2 STORED AS DELTA LOCATION '{c}' OPTIONS ('version' '2');",
        c = checkpointed.display()
    );
    timed("checkpointed tables", run_sql(&s, &ddl))
        .await
        .unwrap();
    for (table, want) in [
        ("checkpointed", vec![0, 1, 2, 10, 11, 12, 20, 21, 22, 100]),
        ("checkpointed_v2", vec![0, 1, 2, 10, 11, 12, 20, 21, 22]),
    ] {
        let got = timed(
            table,
            run_sql(&s, &format!("SELECT k FROM {table} ORDER BY k")),
        )
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"));
        let keys: Vec<i64> = crate::common::column::<arrow::datatypes::Int64Type>(
            &got,
            "k",
            &arrow::datatypes::DataType::Int64,
        );
        assert_eq!(keys, want, "{table}");
    }

    // The DataFrame API, through a remote driver: the table travels in the
    // logical plan as its location and version, the driver reads the log.
    let client = remote_session(&cluster, &[]).await;
    let path = events.to_str().unwrap();
    for (what, df, want) in [
        ("read_delta", client.read_delta(path).await, &v1),
        (
            "read_delta_version(0)",
            client.read_delta_version(path, 0).await,
            &v0,
        ),
        (
            "read_delta_timestamp",
            client.read_delta_timestamp(path, &between).await,
            &v0,
        ),
    ] {
        let df = df
            .unwrap_or_else(|e| panic!("{what}: {e}"))
            .sort(vec![col("id").sort(true, false)])
            .unwrap()
            .select_columns(&["id", "name", "amount", "day", "at", "score"])
            .unwrap();
        let got = timed(what, df.collect())
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_result(
            &got,
            want,
            format!("{what} differs from what deltalake wrote"),
        );
    }
    let err = match client.read_delta_version(path, 2).await {
        Ok(_) => panic!("version 2 does not exist, yet it was read"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("has no version 2"), "{err}");

    // Mistakes: each a clear error, and the cluster serves the next job.
    let not_delta = tempfile::tempdir().unwrap();
    std::fs::copy(
        expected.join("sales.parquet"),
        not_delta.path().join("sales.parquet"),
    )
    .unwrap();
    for (ddl, message) in [
        (
            format!(
                "CREATE EXTERNAL TABLE gone STORED AS DELTA LOCATION '{}/nothing-here'",
                dir.path().display()
            ),
            "does not exist",
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE plain STORED AS DELTA LOCATION '{}'",
                not_delta.path().display()
            ),
            "is not a Delta table: it has no _delta_log",
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE v9 STORED AS DELTA LOCATION '{}' OPTIONS ('version' '9')",
                events.display()
            ),
            "has no version 9: its log holds versions 0 to 1",
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE early STORED AS DELTA LOCATION '{}' OPTIONS ('timestamp' '2001-01-01T00:00:00Z')",
                events.display()
            ),
            "has no version at 2001-01-01",
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE odd STORED AS DELTA LOCATION '{}' OPTIONS ('snapshot' '1')",
                events.display()
            ),
            "unknown option 'snapshot'",
        ),
        (
            "SELECT * FROM events VERSION AS OF 0".to_string(),
            "OPTIONS ('version' '3')",
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE cleaned STORED AS DELTA LOCATION '{}' OPTIONS ('version' '1')",
                checkpointed.display()
            ),
            "has no version 1: its log holds versions 2 to 3",
        ),
    ] {
        let err = timed("a mistake", run_sql(&s, &ddl))
            .await
            .expect_err(&ddl)
            .to_string();
        assert!(
            err.contains(message),
            "{ddl}:\n{err}\nshould say: {message}"
        );
        let got = timed("the next job", run_sql(&s, "SELECT count(*) FROM events"))
            .await
            .unwrap();
        assert_eq!(
            crate::common::single_value(&got),
            datafusion::common::ScalarValue::Int64(Some(5))
        );
    }
}

/// TPC-H SF0.1 written as Delta tables by deltalake from minispark's
/// generated Parquet: the 22 queries answer as DataFusion does over the
/// Parquet files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_over_delta_tables() {
    let tpch = tpch_sf0_1_dir();
    let dir = tempfile::tempdir().unwrap();
    write_fixtures(dir.path(), Some(tpch));
    let cluster = cluster(2).await;
    let s = session(&cluster, &[("minispark.shuffle.partitions", "4")]);
    let ddl: String = TPCH_TABLES
        .iter()
        .map(|t| {
            format!(
                "CREATE EXTERNAL TABLE {t} STORED AS DELTA LOCATION '{}';\n",
                dir.path().join("tpch").join(t).display()
            )
        })
        .collect();
    timed("creating the tables", run_sql(&s, &ddl))
        .await
        .unwrap();
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(4));
    for t in TPCH_TABLES {
        ctx.register_parquet(t, tpch.join(t).to_str().unwrap(), Default::default())
            .await
            .unwrap();
    }
    for q in 1..=22 {
        let sql = crate::tpch::query(q);
        let got = timed(&format!("q{q}"), run_sql(&s, &sql))
            .await
            .unwrap_or_else(|e| panic!("q{q} over Delta: {e}"));
        let expected = oracle_sql(&ctx, &sql).await;
        assert_result(
            &got,
            &expected,
            format!("q{q} over Delta tables differs from DataFusion over Parquet"),
        );
    }
}
