//! Apache Iceberg tables written by pyiceberg (not by minispark) and read by
//! a real cluster: every type, time travel by snapshot id and by time,
//! partition pruning, user mistakes, and TPC-H over Iceberg tables, all
//! against single-node DataFusion reading the same rows as plain Parquet.
//!
//! pyiceberg is installed by `.ci/install-test-deps` in a virtualenv under
//! `${MINISPARK_TEST_DEPS:-~/.cache/minispark-test-deps}/pyiceberg`; without
//! it these tests fail, saying so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use datafusion::prelude::{ParquetReadOptions, SessionContext};
use minispark::client::run_script_in_session;
use minispark::driver::job::JobSession;
use serde_json::Value;

use crate::common::{
    Expected, TPCH_TABLES, assert_result, cluster, run_sql, session, timed, tpch_sf0_1_dir,
};
use crate::processes::output_bounded;

/// Bound on a fixture script (TPC-H SF0.1 into Iceberg takes seconds).
const FIXTURE_TIMEOUT: Duration = Duration::from_secs(600);

/// The Python of the pyiceberg virtualenv.
pub(crate) fn python() -> PathBuf {
    let deps = std::env::var_os("MINISPARK_TEST_DEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            Path::new(&home).join(".cache/minispark-test-deps")
        });
    let python = deps.join("pyiceberg/bin/python");
    assert!(
        python.exists(),
        "{} is missing: pyiceberg writes the Iceberg tables these tests read; run \
         .ci/install-test-deps",
        python.display()
    );
    python
}

/// Runs a fixture script with pyiceberg's Python; its JSON output.
pub(crate) fn run_fixture(script: &str, args: &[&Path]) -> Value {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    run_fixture_with(script, &args)
}

pub(crate) fn run_fixture_with(script: &str, args: &[&std::ffi::OsStr]) -> Value {
    let path = format!("{}/tests/fixtures/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = output_bounded(
        Command::new(python())
            .arg(&path)
            .args(args)
            .stdin(Stdio::null()),
        FIXTURE_TIMEOUT,
        &path,
    );
    assert!(
        out.status.success(),
        "{path} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{path} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A folder for this test run's fixtures, emptied first.
pub(crate) fn fixture_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("minispark-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The tables of `tests/fixtures/iceberg_tables.py`, made once per run.
fn tables() -> &'static (PathBuf, Value) {
    static TABLES: OnceLock<(PathBuf, Value)> = OnceLock::new();
    TABLES.get_or_init(|| {
        let dir = fixture_dir("iceberg");
        let made = run_fixture("iceberg_tables.py", &[&dir]);
        (dir, made)
    })
}

pub(crate) fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("fixture output has no {key}: {other}"),
    }
}

/// EXPLAIN or EXPLAIN ANALYZE text of `sql`.
pub(crate) async fn explain(session: &JobSession, explain: &str, sql: &str) -> String {
    let mut plan = String::new();
    timed(
        "explain",
        run_script_in_session(session, &format!("{explain} {sql}"), &mut |out| {
            plan = out.plan_text().join("\n");
            Ok(())
        }),
    )
    .await
    .unwrap();
    plan
}

/// pyiceberg's tables, current and at older snapshots, give the rows
/// pyarrow wrote beside them as Parquet: ints, strings, decimals (exactly),
/// dates, time-zoned timestamps, lists and NULLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyiceberg_tables_read_at_any_snapshot() {
    let (dir, made) = tables();
    let cluster = cluster(2).await;
    let s = session(&cluster, &[("minispark.shuffle.partitions", "3")]);
    let events = text(made, "events");
    let ddl = format!(
        "CREATE EXTERNAL TABLE events STORED AS ICEBERG LOCATION '{events}';
         CREATE EXTERNAL TABLE events_meta STORED AS ICEBERG LOCATION '{}';
         CREATE EXTERNAL TABLE events_v1 STORED AS ICEBERG LOCATION '{events}'
           OPTIONS ('snapshot-id' '{}');
         CREATE EXTERNAL TABLE events_t1 STORED AS ICEBERG LOCATION '{events}'
           OPTIONS ('as-of-timestamp' '{}');
         CREATE EXTERNAL TABLE events_t2 STORED AS ICEBERG LOCATION '{events}'
           OPTIONS ('as-of-timestamp' '{}');",
        text(made, "events_metadata"),
        text(made, "snapshot1"),
        // Between the two appends: the first snapshot was current then.
        made["snapshot2_ms"].as_i64().unwrap() - 1,
        text(made, "snapshot2_ms"),
    );
    timed("creating tables", run_sql(&s, &ddl)).await.unwrap();

    // The oracle: DataFusion over the Parquet copies, under the same names.
    let oracle = SessionContext::new();
    let parquet = dir.join("parquet");
    for (name, folder) in [
        ("events", "events_v2"),
        ("events_meta", "events_v2"),
        ("events_v1", "events_v1"),
        ("events_t1", "events_v1"),
        ("events_t2", "events_v2"),
    ] {
        oracle
            .register_parquet(
                name,
                parquet.join(folder).to_str().unwrap(),
                ParquetReadOptions::default(),
            )
            .await
            .unwrap();
    }
    for sql in [
        "SELECT * FROM events ORDER BY id",
        "SELECT * FROM events_meta ORDER BY id",
        "SELECT * FROM events_v1 ORDER BY id",
        "SELECT * FROM events_t1 ORDER BY id",
        "SELECT * FROM events_t2 ORDER BY id",
        "SELECT count(*) AS n, count(name) AS names, sum(price) AS total FROM events_v1",
        "SELECT day, count(*) AS n, sum(price) AS total, min(at) AS first, max(name) AS last \
         FROM events GROUP BY day ORDER BY day NULLS FIRST",
        "SELECT id, tags, price FROM events WHERE price > 50 AND name LIKE 'name-1%' ORDER BY id",
        "SELECT id FROM events WHERE at >= TIMESTAMP '2026-11-01 02:00:00+00:00' \
         AND day IS NOT NULL ORDER BY id",
        "SELECT e.id, v.id AS old FROM events e LEFT JOIN events_v1 v ON e.id = v.id \
         WHERE e.id % 50 = 0 ORDER BY e.id",
    ] {
        let expected = Expected::from_dataframe(oracle.sql(sql).await.unwrap())
            .await
            .unwrap();
        assert!(expected.num_rows() > 0, "{sql}: the oracle found no rows");
        let got = timed(sql, run_sql(&s, sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_result(&got, &expected, sql);
    }
    let counts = timed(
        "counts",
        run_sql(
            &s,
            "SELECT (SELECT count(*) FROM events_v1) AS v1, (SELECT count(*) FROM events) AS v2",
        ),
    )
    .await
    .unwrap();
    let counts = arrow::util::pretty::pretty_format_batches(&counts)
        .unwrap()
        .to_string();
    assert!(counts.contains("| 300 | 500 |"), "{counts}");
}

/// A filter on the partition column reads one day's file of six, which
/// EXPLAIN shows (files=1 of 6) and EXPLAIN ANALYZE measures (rows read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_table_prunes_partitions() {
    let (dir, made) = tables();
    assert_eq!(made["daily_files"].as_u64(), Some(6), "{made}");
    let cluster = cluster(2).await;
    let s = session(&cluster, &[]);
    let ddl = format!(
        "CREATE EXTERNAL TABLE daily STORED AS ICEBERG LOCATION '{}';",
        text(made, "daily")
    );
    timed("creating daily", run_sql(&s, &ddl)).await.unwrap();
    let sql = "SELECT count(*) AS n, sum(price) AS total FROM daily WHERE day = DATE '2026-11-03'";
    let oracle = SessionContext::new();
    oracle
        .register_parquet(
            "daily",
            dir.join("parquet/daily").to_str().unwrap(),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
    let expected = Expected::from_dataframe(oracle.sql(sql).await.unwrap())
        .await
        .unwrap();
    let got = timed(sql, run_sql(&s, sql)).await.unwrap();
    assert_result(&got, &expected, sql);

    let plan = explain(&s, "EXPLAIN", sql).await;
    assert!(plan.contains("IcebergScanExec"), "{plan}");
    assert!(
        plan.contains("files=1 of 6"),
        "one day's file of six: {plan}"
    );
    let all = explain(&s, "EXPLAIN", "SELECT count(*) FROM daily").await;
    assert!(all.contains("files=6 of 6"), "{all}");

    // Rows read: the day's rows, not the table's 500.
    let day_rows: usize = timed(
        "day rows",
        run_sql(&s, "SELECT * FROM daily WHERE day = DATE '2026-11-03'"),
    )
    .await
    .unwrap()
    .iter()
    .map(|b| b.num_rows())
    .sum();
    let analyzed = explain(
        &s,
        "EXPLAIN ANALYZE",
        "SELECT * FROM daily WHERE day = DATE '2026-11-03'",
    )
    .await;
    let read = format!("{day_rows} rows");
    assert!(
        analyzed.contains(&read) && !analyzed.contains("500 rows"),
        "the scan reads the day's {day_rows} rows, not 500: {analyzed}"
    );
}

/// What a user gets wrong is named, and the cluster serves the next job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_mistakes_are_named() {
    let (dir, made) = tables();
    let cluster = cluster(1).await;
    let s = session(&cluster, &[]);
    let events = text(made, "events");
    let not_iceberg = dir.join("parquet/events_v1");
    for (ddl, says) in [
        (
            format!(
                "CREATE EXTERNAL TABLE t STORED AS ICEBERG LOCATION '{}/nope'",
                dir.display()
            ),
            "does not exist".to_string(),
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE t STORED AS ICEBERG LOCATION '{}'",
                not_iceberg.display()
            ),
            "is not an Iceberg table".to_string(),
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE t STORED AS ICEBERG LOCATION '{events}' \
                 OPTIONS ('snapshot-id' '12345')"
            ),
            format!(
                "has no snapshot 12345; it has snapshots {}",
                text(made, "snapshot1")
            ),
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE t STORED AS ICEBERG LOCATION '{events}' \
                 OPTIONS ('as-of-timestamp' '1000')"
            ),
            "had no snapshot at 1000 ms".to_string(),
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE t STORED AS ICEBERG LOCATION '{events}' \
                 OPTIONS ('version' '1')"
            ),
            "unknown option 'version'".to_string(),
        ),
        (
            format!("CREATE EXTERNAL TABLE t (a INT) STORED AS ICEBERG LOCATION '{events}'"),
            "columns come from its metadata".to_string(),
        ),
        (
            format!(
                "COPY (SELECT 1 AS a) TO '{}/out' STORED AS ICEBERG",
                dir.display()
            ),
            "does not write them yet".to_string(),
        ),
    ] {
        let e = timed(&ddl, run_sql(&s, &ddl))
            .await
            .expect_err(&ddl)
            .to_string();
        assert!(e.contains(&says), "{ddl}: {e}");
    }
    // After all those, the next job runs.
    let ok = timed(
        "next job",
        run_sql(
            &s,
            &format!(
                "CREATE EXTERNAL TABLE e STORED AS ICEBERG LOCATION '{events}';
                 SELECT count(*) AS n FROM e"
            ),
        ),
    )
    .await
    .unwrap();
    assert_eq!(crate::common::row_count(&ok), 1);
}

/// TPC-H at SF0.1 loaded into Iceberg tables by pyiceberg: the 22 queries
/// give DataFusion's answers over the Parquet files they were loaded from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_over_iceberg_tables() {
    let parquet = tpch_sf0_1_dir();
    let dir = fixture_dir("iceberg-tpch");
    let locations = timed("loading TPC-H into Iceberg", async {
        run_fixture("iceberg_tpch.py", &[parquet, &dir, Path::new("20000")])
    })
    .await;
    let cluster = cluster(2).await;
    let s = session(&cluster, &[("minispark.shuffle.partitions", "4")]);
    let ddl: String = TPCH_TABLES
        .iter()
        .map(|t| {
            format!(
                "CREATE EXTERNAL TABLE {t} STORED AS ICEBERG LOCATION '{}';\n",
                text(&locations, t)
            )
        })
        .collect();
    timed("creating tables", run_sql(&s, &ddl)).await.unwrap();
    let oracle = SessionContext::new();
    for t in TPCH_TABLES {
        oracle
            .register_parquet(
                t,
                parquet.join(t).to_str().unwrap(),
                ParquetReadOptions::default(),
            )
            .await
            .unwrap();
    }
    // lineitem's one file is read as byte ranges by several tasks.
    let plan = explain(&s, "EXPLAIN", "SELECT count(*) FROM lineitem").await;
    assert!(
        plan.contains("files=1 of 1 in 4 splits"),
        "lineitem split into the session's 4 partitions: {plan}"
    );
    for q in 1..=22 {
        let sql = crate::tpch::query(q);
        let expected = Expected::from_dataframe(oracle.sql(&sql).await.unwrap())
            .await
            .unwrap();
        let got = timed(&format!("q{q}"), run_sql(&s, &sql))
            .await
            .unwrap_or_else(|e| panic!("q{q} over Iceberg: {e}"));
        assert_result(&got, &expected, format!("q{q} over Iceberg tables"));
    }
}

/// `Session::read_iceberg` through a remote driver: the table (its
/// metadata and the chosen snapshot) travels in the serialized plan, and
/// time travel by id and by time picks the first snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_iceberg_in_the_dataframe_api_on_a_remote_driver() {
    use datafusion::prelude::{col, lit};
    use minispark::iceberg::SnapshotChoice;

    let (_, made) = tables();
    let cluster = cluster(2).await;
    let s = crate::common::remote_session(&cluster, &[("minispark.shuffle.partitions", "3")]).await;
    let events = text(made, "events");
    let first = made["snapshot1"].as_i64().unwrap();
    let between = made["snapshot2_ms"].as_i64().unwrap() - 1;
    for (choice, rows) in [
        (SnapshotChoice::Current, 500),
        (SnapshotChoice::Id(first), 300),
        (SnapshotChoice::AsOf(between), 300),
    ] {
        let df = s.read_iceberg(&events, choice).await.unwrap();
        assert_eq!(df.count().await.unwrap(), rows, "{choice:?}");
    }
    // A filter and a projection, planned on the driver from the sent table.
    let df = s
        .read_iceberg(&events, SnapshotChoice::Id(first))
        .await
        .unwrap()
        .filter(col("id").lt(lit(10i64)))
        .unwrap()
        .select(vec![col("id"), col("name")])
        .unwrap();
    let got = df.collect().await.unwrap();
    assert_eq!(crate::common::row_count(&got), 10);
    let e = s
        .read_iceberg(&events, SnapshotChoice::Id(7))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("has no snapshot 7"), "{e}");
}

/// pyiceberg's tables written into a bucket of an S3 server (moto, signed
/// requests): two executors read them through minispark's object stores,
/// at both snapshots, with the key given only as session settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_tables_in_an_s3_bucket() {
    use crate::object_store::{MotoServer, as_pairs, server_host};

    let server = MotoServer::start(&server_host());
    let empty = tempfile::tempdir().unwrap();
    let key = server.setup("lake", empty.path(), "", true);
    let dir = fixture_dir("iceberg-s3");
    let made = run_fixture_with(
        "iceberg_tables.py",
        &[
            dir.as_os_str(),
            server.endpoint.as_ref(),
            key.id.as_ref(),
            key.secret.as_ref(),
            "lake".as_ref(),
        ],
    );
    let events = text(&made, "events");
    assert!(events.starts_with("s3://lake/"), "{made}");
    let settings = server.settings(&key.id, &key.secret);
    let cluster = cluster(2).await;
    let s = session(&cluster, &as_pairs(&settings));
    let ddl = format!(
        "CREATE EXTERNAL TABLE events STORED AS ICEBERG LOCATION '{events}';
         CREATE EXTERNAL TABLE events_v1 STORED AS ICEBERG LOCATION '{events}'
           OPTIONS ('snapshot-id' '{}');
         CREATE EXTERNAL TABLE daily STORED AS ICEBERG LOCATION '{}';",
        text(&made, "snapshot1"),
        text(&made, "daily"),
    );
    timed("creating tables", run_sql(&s, &ddl)).await.unwrap();
    let oracle = SessionContext::new();
    let parquet = dir.join("parquet");
    for (name, folder) in [
        ("events", "events_v2"),
        ("events_v1", "events_v1"),
        ("daily", "daily"),
    ] {
        oracle
            .register_parquet(
                name,
                parquet.join(folder).to_str().unwrap(),
                ParquetReadOptions::default(),
            )
            .await
            .unwrap();
    }
    for sql in [
        "SELECT * FROM events ORDER BY id",
        "SELECT * FROM events_v1 ORDER BY id",
        "SELECT day, count(*) AS n, sum(price) AS total FROM daily \
         WHERE day >= DATE '2026-11-03' GROUP BY day ORDER BY day",
    ] {
        let expected = Expected::from_dataframe(oracle.sql(sql).await.unwrap())
            .await
            .unwrap();
        assert!(expected.num_rows() > 0, "{sql}: the oracle found no rows");
        let got = timed(sql, run_sql(&s, sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_result(&got, &expected, sql);
    }
    // Without the key, the table cannot be opened, and the error says where.
    let unsigned = session(&cluster, &[]);
    let e = timed(
        "no key",
        run_sql(
            &unsigned,
            &format!("CREATE EXTERNAL TABLE e STORED AS ICEBERG LOCATION '{events}'"),
        ),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains(&events), "{e}");
    assert!(!e.contains(&key.secret), "{e}");
}
