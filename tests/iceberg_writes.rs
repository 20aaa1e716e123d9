//! Appends to Apache Iceberg tables made by pyiceberg: `INSERT INTO` (and
//! `DataFrame::write_iceberg`) written by several executor processes and
//! committed once by the driver as one new snapshot; read back by
//! minispark (current and previous snapshot) and by pyiceberg's own reader
//! (`StaticTable` on the new metadata file), with the same rows exactly.
//! A killed executor leaves one copy of every row, a failed job commits
//! nothing, two writers racing for one version never both win, and a table
//! in an S3 bucket (moto) takes appends too.
//!
//! pyiceberg comes from `.ci/install-test-deps` (see tests/iceberg.rs);
//! without it these tests fail, saying so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use datafusion::common::ScalarValue;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use minispark::driver::job::JobSession;
use minispark::executor::straggler_faults::STRAGGLER_ENV;
use minispark_planner::session::session_context;
use serde_json::Value;

use crate::common::{Expected, assert_result, cluster, oracle_sql, run_sql, session, timed};
use crate::distributed_writes::files_under;
use crate::iceberg::{explain, fixture_dir, run_fixture, run_fixture_with, text};
use crate::process_cluster::ProcessCluster;

/// Four partitions, none merged: the write stage has four tasks, and every
/// task of a scan of TPC-H orders has rows.
const SETTINGS: [(&str, &str); 2] = [
    ("minispark.shuffle.partitions", "4"),
    ("minispark.adaptive.enabled", "false"),
];

/// Rows for `ns.plain` (id, name, price, day, at, tags), 15,000 of them,
/// with ids from 1,000,000 (pyiceberg's rows have ids 0..99).
const PLAIN_ROWS: &str = "SELECT o_orderkey + 1000000 AS id, \
       CASE WHEN o_orderkey % 7 = 0 THEN NULL ELSE o_orderpriority END AS name, \
       CAST(o_totalprice AS DECIMAL(12, 2)) AS price, \
       o_orderdate AS day, \
       to_timestamp_seconds(1793491200 + o_orderkey * 61) AS at, \
       make_array(CAST(o_custkey % 3 AS INT)) AS tags \
     FROM tpch.sf0_01.orders";

/// Rows for `ns.viewing_events` (user_id, title, country, seconds, at),
/// partitioned by day(at) and country: three days, NULL days, five
/// countries (one NULL, one with `/` and `=` in it).
const EVENT_ROWS: &str = "SELECT o_orderkey AS user_id, o_orderpriority AS title, \
       CASE o_orderkey % 5 WHEN 0 THEN 'NL' WHEN 1 THEN 'US' WHEN 2 THEN 'BR' \
         WHEN 3 THEN 'A/B=C' END AS country, \
       CAST(o_custkey % 3600 AS INT) AS seconds, \
       CASE WHEN o_orderkey % 11 = 0 THEN NULL \
         ELSE to_timestamp_seconds(1793491200 + (o_orderkey % 3) * 86400 + o_orderkey % 86400) \
       END AS at \
     FROM tpch.sf0_01.orders";

/// The tables of `tests/fixtures/iceberg_write_tables.py` in a fresh
/// folder (each test appends to its own).
fn tables(name: &str) -> (PathBuf, Value) {
    let dir = fixture_dir(name);
    let made = run_fixture("iceberg_write_tables.py", &[&dir]);
    (dir, made)
}

/// A path from a `file://` location.
fn local(location: &str) -> PathBuf {
    PathBuf::from(location.strip_prefix("file://").unwrap_or(location))
}

/// The newest metadata file of a local table (minispark's commits write
/// `v<N>.metadata.json`).
fn newest_metadata(table: &Path) -> PathBuf {
    let hint = std::fs::read_to_string(table.join("metadata/version-hint.text"))
        .expect("a commit writes version-hint.text");
    table.join(format!("metadata/v{}.metadata.json", hint.trim()))
}

/// pyiceberg's reading of the table at `metadata`, registered in a fresh
/// DataFusion context as `back`; and what pyiceberg said of it.
async fn pyiceberg_reads(metadata: &str, extra: &[&str]) -> (SessionContext, Value) {
    let out = tempfile::Builder::new()
        .suffix(".parquet")
        .tempfile()
        .unwrap()
        .into_temp_path()
        .keep()
        .unwrap();
    let mut args: Vec<&std::ffi::OsStr> = vec![metadata.as_ref(), out.as_os_str()];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    let said = run_fixture_with("iceberg_read_back.py", &args);
    let ctx = SessionContext::new();
    ctx.register_parquet("back", out.to_str().unwrap(), ParquetReadOptions::default())
        .await
        .unwrap();
    (ctx, said)
}

fn count(batches: &[arrow::array::RecordBatch]) -> u64 {
    match crate::common::single_value(batches) {
        ScalarValue::UInt64(Some(n)) => n,
        ScalarValue::Int64(Some(n)) => n as u64,
        other => panic!("not a count: {other:?}"),
    }
}

/// INSERT INTO an unpartitioned table from 2 executors: the write stage's
/// 4 tasks each write a data file, the driver commits one snapshot;
/// minispark reads the new snapshot (the rows DataFusion computes) and,
/// by snapshot id, the previous one; pyiceberg reads the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_into_an_iceberg_table_appends_one_snapshot() {
    let (_dir, made) = tables("iceberg-append");
    let location = text(&made, "plain");
    let cluster = cluster(2).await;
    let s = session(&cluster, &SETTINGS);
    let ddl = format!(
        "CREATE EXTERNAL TABLE plain STORED AS ICEBERG LOCATION '{location}';
         CREATE EXTERNAL TABLE plain_v1 STORED AS ICEBERG LOCATION '{location}'
           OPTIONS ('snapshot-id' '{}');",
        text(&made, "plain_snapshot")
    );
    timed("creating tables", run_sql(&s, &ddl)).await.unwrap();

    let insert = format!("INSERT INTO plain {PLAIN_ROWS}");
    let plan = explain(&s, "EXPLAIN", &insert).await;
    assert!(
        plan.contains("(4 tasks;") && plan.contains("as an Iceberg append to"),
        "the write runs in the result stage's 4 tasks: {plan}"
    );
    let written = timed("INSERT INTO plain", run_sql(&s, &insert))
        .await
        .unwrap();
    assert_eq!(count(&written), 15_000);

    // One new snapshot of 4 data files, nothing staged left behind.
    let table = local(&location);
    let files = files_under(&table.join("data"));
    assert!(
        files.iter().all(|f| !f.contains("_minispark_staging")),
        "{files:?}"
    );
    assert_eq!(
        files.len(),
        1 + 4,
        "pyiceberg's file and one per task: {files:?}"
    );
    let metadata = newest_metadata(&table);

    // minispark reads the new snapshot (a new table over the folder) and the
    // previous one.
    let check = format!(
        "CREATE EXTERNAL TABLE plain2 STORED AS ICEBERG LOCATION '{location}';
         SELECT (SELECT count(*) FROM plain2) AS now, (SELECT count(*) FROM plain_v1) AS before"
    );
    let counts = timed("counts", run_sql(&s, &check)).await.unwrap();
    let counts = arrow::util::pretty::pretty_format_batches(&counts)
        .unwrap()
        .to_string();
    assert!(counts.contains("| 15100 | 100    |"), "{counts}");

    // The appended rows are DataFusion's.
    let oracle = session_context(&Default::default()).unwrap();
    let projection = "SELECT id, CAST(name AS VARCHAR) AS name, price, day, \
                      to_unixtime(at) AS at_s, tags[1] AS tag \
                      FROM {} WHERE id >= 1000000 ORDER BY id";
    let expected = oracle_sql(
        &oracle,
        &projection.replace("{}", &format!("({PLAIN_ROWS})")),
    )
    .await;
    let got = timed(
        "appended rows",
        run_sql(&s, &projection.replace("{}", "plain2")),
    )
    .await
    .unwrap();
    assert_result(&got, &expected, "the appended rows");

    // pyiceberg reads the new metadata file: the same rows as minispark.
    let (back, said) = pyiceberg_reads(metadata.to_str().unwrap(), &[]).await;
    assert_eq!(said["rows"].as_u64(), Some(15_100), "{said}");
    assert_eq!(said["snapshots"].as_u64(), Some(2), "{said}");
    assert_eq!(said["files"].as_u64(), Some(5), "{said}");
    let all = "SELECT * FROM {} ORDER BY id";
    let expected = Expected::from_dataframe(back.sql(&all.replace("{}", "back")).await.unwrap())
        .await
        .unwrap();
    let got = timed("all rows", run_sql(&s, &all.replace("{}", "plain2")))
        .await
        .unwrap();
    assert_result(
        &got,
        &expected,
        "minispark and pyiceberg read the same rows",
    );

    // A filter on ids below the appended ones reads pyiceberg's file only:
    // the appended files carry column bounds.
    let pruned = explain(&s, "EXPLAIN", "SELECT * FROM plain2 WHERE id < 50").await;
    assert!(pruned.contains("files=1 of 5"), "{pruned}");
}

/// A table partitioned by day(at) and country: each task writes one file
/// per partition value it holds, under `data/at_day=.../country=.../`;
/// NULL days and countries, and a country with `/` and `=`, are partition
/// values like others; pyiceberg reads the same rows, and a filter on the
/// day prunes partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_append_is_read_back_by_pyiceberg() {
    let (_dir, made) = tables("iceberg-append-partitioned");
    let location = text(&made, "viewing_events");
    let cluster = cluster(2).await;
    let s = session(&cluster, &SETTINGS);
    let ddl =
        format!("CREATE EXTERNAL TABLE viewing_events STORED AS ICEBERG LOCATION '{location}';");
    timed("creating table", run_sql(&s, &ddl)).await.unwrap();
    let written = timed(
        "INSERT INTO viewing_events",
        run_sql(&s, &format!("INSERT INTO viewing_events {EVENT_ROWS}")),
    )
    .await
    .unwrap();
    assert_eq!(count(&written), 15_000);

    let table = local(&location);
    let files = files_under(&table.join("data"));
    assert!(
        files
            .iter()
            .all(|f| f.starts_with("at_day=") && f.contains("/country=")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|f| f.starts_with("at_day=null/")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|f| f.contains("/country=A_B=C/")),
        "{files:?}"
    );
    // 4 days (one NULL) x 5 countries (one NULL), in each of the 4 tasks.
    assert_eq!(files.len(), 4 * 5 * 4, "{files:?}");

    let check = format!(
        "CREATE EXTERNAL TABLE ev STORED AS ICEBERG LOCATION '{location}';
         SELECT * FROM ev ORDER BY user_id"
    );
    let oracle = session_context(&Default::default()).unwrap();
    let got = timed("reading back", run_sql(&s, &check)).await.unwrap();
    let (back, said) = pyiceberg_reads(newest_metadata(&table).to_str().unwrap(), &[]).await;
    assert_eq!(said["rows"].as_u64(), Some(15_000), "{said}");
    let expected = Expected::from_dataframe(
        back.sql("SELECT * FROM back ORDER BY user_id")
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_result(
        &got,
        &expected,
        "minispark and pyiceberg read the same rows",
    );

    // The rows are DataFusion's, partition columns included.
    let summary = "SELECT CAST(country AS VARCHAR) AS country, CAST(at AS DATE) AS d, \
                   count(*) AS n, sum(seconds) AS s \
                   FROM {} GROUP BY country, d ORDER BY country NULLS FIRST, d NULLS FIRST";
    let expected = oracle_sql(&oracle, &summary.replace("{}", &format!("({EVENT_ROWS})"))).await;
    let got = timed("per partition", run_sql(&s, &summary.replace("{}", "ev")))
        .await
        .unwrap();
    assert_result(&got, &expected, "rows per partition");

    // A day's filter reads that day's files only: 5 countries x 4 tasks.
    let day = "SELECT count(*) FROM ev WHERE at >= TIMESTAMP '2026-11-01T00:00:00Z' \
               AND at < TIMESTAMP '2026-11-02T00:00:00Z'";
    let plan = explain(&s, "EXPLAIN", day).await;
    assert!(plan.contains("files=20 of 80"), "{plan}");
}

/// An executor killed while the write stage runs (its tasks held back by a
/// test fault): its tasks run again on the other executor, and the commit
/// holds every row once, in one new snapshot, with no staged file left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_executor_mid_append_leaves_one_copy_of_every_row() {
    let (_dir, made) = tables("iceberg-append-killed");
    let location = text(&made, "plain");
    let mut cluster = ProcessCluster::start(Duration::from_secs(5)).await;
    // Stage 0 is the write (a scan, then the files): every first attempt
    // on the doomed executor waits a minute.
    let held = "0:0:60000,0:1:60000,0:2:60000,0:3:60000";
    let doomed = cluster.spawn_executor(2, &[(STRAGGLER_ENV, held)]);
    let healthy = cluster.spawn_executor(2, &[]);
    cluster.wait_for_executors(&[doomed.clone(), healthy]).await;
    let s = cluster.session(&SETTINGS);
    timed(
        "creating table",
        run_sql(
            &s,
            &format!("CREATE EXTERNAL TABLE plain STORED AS ICEBERG LOCATION '{location}'"),
        ),
    )
    .await
    .unwrap();
    let insert = format!("INSERT INTO plain {PLAIN_ROWS}");
    let write = run_sql(&s, &insert);
    let kill = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster.kill(&doomed);
    };
    let (written, ()) = timed("INSERT with a killed executor", async {
        tokio::join!(write, kill)
    })
    .await;
    assert_eq!(count(&written.unwrap()), 15_000);
    let counters = s.last_job_counters().unwrap();
    assert!(counters.failed_attempts >= 1, "{counters}");
    tokio::time::sleep(Duration::from_secs(3)).await;

    let table = local(&location);
    let files = files_under(&table.join("data"));
    assert!(
        files.iter().all(|f| !f.contains("_minispark_staging")),
        "{files:?}"
    );
    let (back, said) = pyiceberg_reads(newest_metadata(&table).to_str().unwrap(), &[]).await;
    assert_eq!(said["snapshots"].as_u64(), Some(2), "{said}");
    assert_eq!(said["rows"].as_u64(), Some(15_100), "{said}");
    let got = back
        .sql("SELECT count(*) AS n, count(DISTINCT id) AS ids FROM back")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&got)
        .unwrap()
        .to_string();
    assert!(text.contains("| 15100 | 15100 |"), "every row once: {text}");
}

/// A job that fails after some tasks wrote their files commits nothing:
/// no new snapshot, no data file, no staging folder. INSERT OVERWRITE and
/// an insert into a table opened at an old snapshot are refused, naming
/// why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_append_commits_nothing() {
    let (_dir, made) = tables("iceberg-append-failed");
    let location = text(&made, "plain");
    let table = local(&location);
    let before = files_under(&table);
    let cluster = cluster(2).await;
    let s = session(&cluster, &SETTINGS);
    let ddl = format!(
        "CREATE EXTERNAL TABLE plain STORED AS ICEBERG LOCATION '{location}';
         CREATE EXTERNAL TABLE plain_v1 STORED AS ICEBERG LOCATION '{location}'
           OPTIONS ('snapshot-id' '{}');",
        text(&made, "plain_snapshot")
    );
    timed("creating tables", run_sql(&s, &ddl)).await.unwrap();
    let failing = PLAIN_ROWS.replace(
        "o_orderkey + 1000000 AS id",
        "CAST(10 / (o_orderkey - 7) AS BIGINT) + o_orderkey AS id",
    );
    let err = timed(
        "a failing INSERT",
        run_sql(&s, &format!("INSERT INTO plain {failing}")),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("divide by zero"),
        "{err}"
    );
    // The staging folder is removed at once and again after 2 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(files_under(&table), before, "a failed job left files");

    for (sql, says) in [
        (
            format!("INSERT OVERWRITE plain {PLAIN_ROWS}"),
            "takes appends only",
        ),
        (
            format!("INSERT INTO plain_v1 {PLAIN_ROWS}"),
            "so it is read-only",
        ),
    ] {
        let e = timed(&sql, run_sql(&s, &sql))
            .await
            .expect_err(&sql)
            .to_string();
        assert!(e.contains(says), "{sql}: {e}");
    }
    assert_eq!(files_under(&table), before, "a refused write left files");
    // The table still takes an append.
    let ok = timed(
        "an append after all that",
        run_sql(&s, "INSERT INTO plain SELECT * FROM plain_v1"),
    )
    .await
    .unwrap();
    assert_eq!(count(&ok), 100);
}

/// Two INSERTs into one table at once, from two sessions: the folder
/// catalog lets one commit each version (the other retries on the new
/// one), so both appends land, as two snapshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_both_land_in_turn() {
    let (_dir, made) = tables("iceberg-append-concurrent");
    let location = text(&made, "plain");
    let cluster = cluster(2).await;
    let sessions: Vec<JobSession> = (0..2).map(|_| session(&cluster, &SETTINGS)).collect();
    for s in &sessions {
        timed(
            "creating table",
            run_sql(
                s,
                &format!("CREATE EXTERNAL TABLE plain STORED AS ICEBERG LOCATION '{location}'"),
            ),
        )
        .await
        .unwrap();
    }
    let first = format!("INSERT INTO plain {PLAIN_ROWS} WHERE o_orderkey % 2 = 0");
    let second = format!("INSERT INTO plain {PLAIN_ROWS} WHERE o_orderkey % 2 = 1");
    let (a, b) = timed("two INSERTs at once", async {
        tokio::join!(
            run_sql(&sessions[0], &first),
            run_sql(&sessions[1], &second)
        )
    })
    .await;
    assert_eq!(count(&a.unwrap()) + count(&b.unwrap()), 15_000);
    let table = local(&location);
    let (_, said) = pyiceberg_reads(newest_metadata(&table).to_str().unwrap(), &[]).await;
    assert_eq!(said["snapshots"].as_u64(), Some(3), "{said}");
    assert_eq!(said["rows"].as_u64(), Some(15_100), "{said}");
}

/// `DataFrame::write_iceberg` appends a DataFrame to a table, and makes a
/// new unpartitioned table where the location has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_iceberg_appends_a_dataframe() {
    let (dir, made) = tables("iceberg-append-dataframe");
    let location = text(&made, "plain");
    let cluster = cluster(2).await;
    let s = crate::common::remote_session(&cluster, &SETTINGS).await;
    let v1 = s
        .read_iceberg(&location, minispark::iceberg::SnapshotChoice::Current)
        .await
        .unwrap();
    let written = v1.write_iceberg(&location).await.unwrap();
    assert_eq!(written, 100);
    let now = s
        .read_iceberg(&location, minispark::iceberg::SnapshotChoice::Current)
        .await
        .unwrap();
    assert_eq!(now.count().await.unwrap(), 200);

    // A new table from a DataFrame's schema.
    let fresh = dir.join("fresh");
    let fresh = fresh.to_str().unwrap();
    let df = s
        .sql("SELECT o_orderkey AS k, o_orderpriority AS p FROM tpch.sf0_01.orders")
        .await
        .unwrap();
    assert_eq!(df.clone().write_iceberg(fresh).await.unwrap(), 15_000);
    // Its partitioning is what it was made with; a write naming another is
    // refused before anything runs.
    let other = df
        .clone()
        .write_iceberg_partitioned(fresh, &["p"])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        other.contains("is partitioned by nothing (unpartitioned), not by p"),
        "{other}"
    );
    let bucket = df
        .write_iceberg_partitioned(&format!("{fresh}-bucketed"), &["bucket(4, k)"])
        .await
        .unwrap_err()
        .to_string();
    assert!(bucket.contains("not bucket"), "{bucket}");
    assert!(!dir.join("fresh-bucketed").exists());
    let (back, said) =
        pyiceberg_reads(newest_metadata(Path::new(fresh)).to_str().unwrap(), &[]).await;
    assert_eq!(said["rows"].as_u64(), Some(15_000), "{said}");
    let got = s
        .read_iceberg(fresh, minispark::iceberg::SnapshotChoice::Current)
        .await
        .unwrap()
        .sort(vec![datafusion::prelude::col("k").sort(true, false)])
        .unwrap()
        .collect()
        .await
        .unwrap();
    let expected =
        Expected::from_dataframe(back.sql("SELECT * FROM back ORDER BY k").await.unwrap())
            .await
            .unwrap();
    assert_result(&got, &expected, "a new table read back");
}

/// A table in an S3 bucket (moto, signed requests): the append's files and
/// metadata go into the bucket (the next version created with
/// `If-None-Match`), and pyiceberg reads the rows back from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_to_an_iceberg_table_in_s3() {
    use crate::object_store::{MotoServer, as_pairs, server_host};

    let server = MotoServer::start(&server_host());
    let empty = tempfile::tempdir().unwrap();
    let key = server.setup("lake", empty.path(), "", true);
    let dir = fixture_dir("iceberg-append-s3");
    let made = run_fixture_with(
        "iceberg_write_tables.py",
        &[
            dir.as_os_str(),
            server.endpoint.as_ref(),
            key.id.as_ref(),
            key.secret.as_ref(),
            "lake".as_ref(),
        ],
    );
    let location = text(&made, "viewing_events");
    assert!(location.starts_with("s3://lake/"), "{made}");
    let settings = server.settings(&key.id, &key.secret);
    let cluster = cluster(2).await;
    let s = session(&cluster, &[&SETTINGS[..], &as_pairs(&settings)].concat());
    let written = timed(
        "INSERT into S3",
        run_sql(
            &s,
            &format!(
                "CREATE EXTERNAL TABLE ev STORED AS ICEBERG LOCATION '{location}';
                 INSERT INTO ev {EVENT_ROWS}"
            ),
        ),
    )
    .await
    .unwrap();
    assert_eq!(count(&written), 15_000);
    let got = timed(
        "reading back",
        run_sql(
            &s,
            &format!(
                "CREATE EXTERNAL TABLE ev2 STORED AS ICEBERG LOCATION '{location}';
                 SELECT * FROM ev2 ORDER BY user_id"
            ),
        ),
    )
    .await
    .unwrap();
    // viewing_events had version 0 (pyiceberg's); the append made version 1.
    let metadata = format!("{location}/metadata/v1.metadata.json");
    let (back, said) = pyiceberg_reads(
        &metadata,
        &[
            server.endpoint.as_str(),
            key.id.as_str(),
            key.secret.as_str(),
        ],
    )
    .await;
    assert_eq!(said["rows"].as_u64(), Some(15_000), "{said}");
    let expected = Expected::from_dataframe(
        back.sql("SELECT * FROM back ORDER BY user_id")
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_result(
        &got,
        &expected,
        "minispark and pyiceberg read the same rows",
    );
}
