//! Delta Lake writes (`minispark_delta::commit`, the driver's
//! `write::delta_log_committer`): `INSERT INTO` / `INSERT OVERWRITE` a
//! `STORED AS DELTA` table and `DataFrame::write_delta` run on real
//! executor processes, each task writing its own Parquet files, and the
//! driver commits one log version. The `deltalake` Python package
//! (delta-rs) reads back what minispark wrote (same rows, exactly, and the
//! same versions); minispark reads its own versions back by time travel.
//! A killed executor mid-write still leaves one committed copy of every
//! row; a failed job commits nothing and leaves no staged file; the same
//! on S3 (moto's server).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use datafusion::common::ScalarValue;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use minispark::SaveMode;
use minispark::executor::straggler_faults::STRAGGLER_ENV;
use minispark_planner::session::session_context;

use crate::common::{
    Expected, assert_result, cluster, oracle_sql, remote_session, run_sql, session, single_value,
    timed,
};
use crate::delta::deltalake_python;
use crate::distributed_writes::files_under;
use crate::process_cluster::ProcessCluster;
use crate::processes::output_bounded;

/// Four partitions, none merged by adaptive execution: the write stage has
/// four tasks.
const SETTINGS: [(&str, &str); 2] = [
    ("minispark.shuffle.partitions", "4"),
    ("minispark.adaptive.enabled", "false"),
];

/// The rows of the tests: TPC-H orders (4 partitions: 4 write tasks, each
/// with rows of every `filter`) as an id, a name and a key of 3 values
/// (the partition column of the partitioned table).
fn rows(filter: &str) -> String {
    format!(
        "SELECT o_orderkey AS id, o_orderpriority AS name, o_orderkey % 3 AS k \
         FROM tpch.sf0_01.orders WHERE {filter}"
    )
}

/// The first write, the append and the overwrite of the tests.
const FIRST: &str = "o_orderkey % 4 = 0";
const APPENDED: &str = "o_orderkey % 4 IN (1, 2)";
const AFTER_APPEND: &str = "o_orderkey % 4 IN (0, 1, 2)";
const OVERWRITE: &str = "o_orderkey % 4 = 3";

/// `rows(filter)` sorted by id, by single-node DataFusion, in the types a
/// read of the table gives (strings as `Utf8View`, as DataFusion reads
/// Parquet).
async fn expected(filter: &str) -> Expected {
    oracle(&typed(&rows(filter))).await
}

/// `sql`'s id, name and k sorted by id, in the types a read gives.
fn typed(sql: &str) -> String {
    format!(
        "SELECT CAST(id AS BIGINT) AS id, CAST(name AS VARCHAR) AS name, \
         CAST(k AS BIGINT) AS k FROM ({sql}) ORDER BY id"
    )
}

/// `rows(filter)` as a DataFrame of `client`.
async fn few_rows(client: &minispark::Session, filter: &str) -> minispark::DataFrame {
    client.sql(&rows(filter)).await.unwrap()
}

/// How many rows `sql` returns, by single-node DataFusion.
async fn count(sql: &str) -> u64 {
    let ctx = session_context(&Default::default()).unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    batches.iter().map(|b| b.num_rows() as u64).sum()
}

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// What deltalake read of a table.
struct Read {
    /// The rows, as one Parquet file.
    file: PathBuf,
    version: u64,
    rows: u64,
    files: u64,
    partition_columns: Vec<String>,
    commits: u64,
}

/// Reads the table at `uri` (at `version`, or the newest) with deltalake.
fn deltalake_read(
    uri: &str,
    out: &Path,
    version: Option<u64>,
    storage_options: Option<&str>,
) -> Read {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/delta_read.py");
    let file = out.join(format!("read-{}.parquet", rand_suffix()));
    let mut command = Command::new(deltalake_python());
    command
        .arg(&script)
        .arg(uri)
        .arg(&file)
        .arg(version.map_or("latest".to_string(), |v| v.to_string()))
        .stdin(Stdio::null());
    if let Some(options) = storage_options {
        command.arg(options);
    }
    let output = output_bounded(&mut command, SCRIPT_TIMEOUT, "deltalake reading a table");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "deltalake cannot read {uri} ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("the read script printed {line:?}: {e}"));
    let number = |k: &str| value[k].as_u64().unwrap_or_else(|| panic!("{k}: {value}"));
    Read {
        file,
        version: number("version"),
        rows: number("rows"),
        files: number("files"),
        partition_columns: value["partition_columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect(),
        commits: number("commits"),
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst).to_string()
}

/// `sql` over the rows deltalake read (as table `t`), by DataFusion.
async fn over_read(read: &Read, sql: &str) -> Expected {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    ctx.register_parquet(
        "t",
        read.file.to_str().unwrap(),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    oracle_sql(&ctx, sql).await
}

/// `sql` by single-node DataFusion.
async fn oracle(sql: &str) -> Expected {
    let ctx = session_context(&Default::default()).unwrap();
    oracle_sql(&ctx, sql).await
}

const ALL: &str = "SELECT id, name, k FROM t ORDER BY id";

/// The table's commit files.
fn log_versions(dir: &Path) -> Vec<String> {
    files_under(dir)
        .into_iter()
        .filter(|f| f.starts_with("_delta_log/") && f.ends_with(".json"))
        .collect()
}

/// `write_delta` creates a table (through a remote driver: the plan travels
/// with the new table), SQL `INSERT INTO` appends and `INSERT OVERWRITE`
/// replaces: every write one log version, committed by the driver from the
/// files of 4 tasks on 2 executors. deltalake reads each version with
/// exactly the rows minispark wrote, and minispark reads every version back
/// by time travel. The same for a table partitioned by `k`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_commit_versions_deltalake_reads() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(2).await;
    let s = session(&cluster, &SETTINGS);
    let client = remote_session(&cluster, &SETTINGS).await;
    for (name, partition_by) in [("plain", vec![]), ("parted", vec!["k"])] {
        let table = dir.path().join(name);
        let path = table.to_str().unwrap();
        // Version 0: a new table from the DataFrame API.
        let written = timed(
            "write_delta",
            client.sql(&rows(FIRST)).await.unwrap().write_delta(
                path,
                SaveMode::ErrorIfExists,
                &partition_by,
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: write_delta: {e}"));
        assert_eq!(written, count(&rows(FIRST)).await, "{name}");
        // Version 1: SQL append; version 2: SQL overwrite.
        let sql = format!(
            "CREATE EXTERNAL TABLE {name} STORED AS DELTA LOCATION '{path}';
             INSERT INTO {name} {}",
            rows(APPENDED)
        );
        let got = timed("INSERT INTO", run_sql(&s, &sql)).await.unwrap();
        let appended = count(&rows(APPENDED)).await;
        assert_eq!(single_value(&got), ScalarValue::UInt64(Some(appended)));
        let plan = timed(
            "EXPLAIN INSERT",
            run_sql(&s, &format!("EXPLAIN INSERT INTO {name} {}", rows(FIRST))),
        )
        .await
        .unwrap();
        let plan = arrow::util::pretty::pretty_format_batches(&plan)
            .unwrap()
            .to_string();
        assert!(
            plan.contains("FileWriteExec: parquet") && plan.contains("Delta append to"),
            "{plan}"
        );
        let after_append = deltalake_read(path, dir.path(), None, None);
        assert_eq!(
            (
                after_append.version,
                after_append.rows,
                after_append.commits
            ),
            (1, count(&rows(AFTER_APPEND)).await, 2),
            "{name}"
        );
        assert_result(
            &over_read(&after_append, ALL).await.batches,
            &expected(AFTER_APPEND).await,
            format!("{name}: deltalake reads what minispark appended"),
        );
        let got = timed(
            "INSERT OVERWRITE",
            run_sql(&s, &format!("INSERT OVERWRITE {name} {}", rows(OVERWRITE))),
        )
        .await
        .unwrap();
        let overwritten = count(&rows(OVERWRITE)).await;
        assert_eq!(single_value(&got), ScalarValue::UInt64(Some(overwritten)));

        let latest = deltalake_read(path, dir.path(), None, None);
        assert_eq!(
            (latest.version, latest.rows, latest.commits),
            (2, overwritten, 3),
            "{name}"
        );
        assert_result(
            &over_read(&latest, ALL).await.batches,
            &expected(OVERWRITE).await,
            format!("{name}: deltalake reads the overwrite"),
        );
        let first = deltalake_read(path, dir.path(), Some(0), None);
        assert_eq!(first.version, 0, "{name}");
        assert_result(
            &over_read(&first, ALL).await.batches,
            &expected(FIRST).await,
            format!("{name}: deltalake reads version 0"),
        );
        let want_parts: Vec<String> = partition_by.iter().map(|c| c.to_string()).collect();
        assert_eq!(latest.partition_columns, want_parts, "{name}");
        if partition_by.is_empty() {
            // One file per task of the overwrite.
            assert_eq!(latest.files, 4, "{name}");
        } else {
            // One file per task and key value.
            assert_eq!(latest.files, 12, "{name}");
            for k in 0..3 {
                assert!(table.join(format!("k={k}")).is_dir(), "{name}: k={k}/");
            }
        }
        assert_eq!(
            log_versions(&table),
            [
                "_delta_log/00000000000000000000.json",
                "_delta_log/00000000000000000001.json",
                "_delta_log/00000000000000000002.json",
            ],
            "{name}"
        );
        assert!(!table.join("_minispark_staging").exists(), "{name}");

        // minispark's own time travel over its versions.
        for (version, want) in [(0, FIRST), (1, AFTER_APPEND), (2, OVERWRITE)] {
            let sql = format!(
                "CREATE EXTERNAL TABLE {name}_v{version} STORED AS DELTA LOCATION '{path}' \
                 OPTIONS ('version' '{version}');
                 SELECT id, name, k FROM {name}_v{version} ORDER BY id"
            );
            let got = timed("time travel", run_sql(&s, &sql)).await.unwrap();
            assert_result(
                &got,
                &expected(want).await,
                format!("{name} at version {version}"),
            );
        }
        // Partition pruning over what minispark wrote.
        if !partition_by.is_empty() {
            let got = timed(
                "a pruned read",
                run_sql(&s, &format!("SELECT count(*) FROM {name} WHERE k = 1")),
            )
            .await
            .unwrap();
            let want = count(&format!("{} AND o_orderkey % 3 = 1", rows(OVERWRITE))).await;
            assert_eq!(single_value(&got), ScalarValue::Int64(Some(want as i64)));
        }
    }

    // SaveMode on an existing table, and the mistakes a write refuses.
    let table = dir.path().join("plain");
    let path = table.to_str().unwrap();
    let ten = "o_orderkey < 20";
    let err = few_rows(&client, ten)
        .await
        .write_delta(path, SaveMode::ErrorIfExists, &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists (version 2)"), "{err}");
    assert_eq!(
        few_rows(&client, ten)
            .await
            .write_delta(path, SaveMode::Ignore, &[])
            .await
            .unwrap(),
        0
    );
    let few = count(&rows(ten)).await;
    assert_eq!(
        few_rows(&client, ten)
            .await
            .write_delta(path, SaveMode::Append, &[])
            .await
            .unwrap(),
        few
    );
    let err = client
        .sql("SELECT value AS id, CAST(1 AS INT) AS k, 'x' AS extra FROM generate_series(1, 3)")
        .await
        .unwrap()
        .write_delta(path, SaveMode::Append, &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("column k is Int64 in the table but Int32"),
        "{err}"
    );
    assert!(err.contains("column name is missing"), "{err}");
    assert!(err.contains("column extra is not in the table"), "{err}");
    let err = few_rows(&client, ten)
        .await
        .write_delta(path, SaveMode::Append, &["k"])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("partitioned by [], not by [k]"), "{err}");
    let sql = format!(
        "CREATE EXTERNAL TABLE plain_old STORED AS DELTA LOCATION '{path}' OPTIONS ('version' '1');
         INSERT INTO plain_old {}",
        rows(ten)
    );
    let err = timed("INSERT into a past version", run_sql(&s, &sql))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("(time travel) and cannot be written"), "{err}");
    // None of the refused writes committed: 4 versions (the last append).
    assert_eq!(log_versions(&table).len(), 4);
    let read = deltalake_read(path, dir.path(), None, None);
    assert_eq!(
        (read.version, read.rows),
        (3, count(&rows(OVERWRITE)).await + few)
    );
}

/// A failed job (a cast error in the SELECT, after other tasks wrote their
/// files) commits nothing to a Delta table and leaves no staged file: the
/// log keeps its versions, the folder its files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delta_write_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(2).await;
    let s = session(&cluster, &SETTINGS);
    let client = remote_session(&cluster, &SETTINGS).await;
    let table = dir.path().join("t");
    let path = table.to_str().unwrap();
    let first = client
        .sql(&rows(FIRST))
        .await
        .unwrap()
        .write_delta(path, SaveMode::Append, &[])
        .await
        .unwrap();
    let before = files_under(&table);
    let sql = format!(
        "CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '{path}';
         INSERT INTO t SELECT o_orderkey AS id, \
            CAST(CASE WHEN o_orderkey = 7 THEN 'x' ELSE '1' END AS INT) AS name, \
            o_orderkey % 3 AS k FROM tpch.sf0_01.orders"
    );
    let err = timed("a failing INSERT", run_sql(&s, &sql))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("cast"), "{err}");
    // The staging folder is removed at once and again after 2 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        files_under(&table),
        before,
        "a failed write changed the table"
    );
    let read = deltalake_read(path, dir.path(), None, None);
    assert_eq!((read.version, read.rows), (0, first));

    // A new table whose first write fails is not created at all.
    let never = dir.path().join("never");
    let err = client
        .sql("SELECT o_orderkey AS id, 10 / (o_orderkey - 7) AS x FROM tpch.sf0_01.orders")
        .await
        .unwrap()
        .write_delta(never.to_str().unwrap(), SaveMode::Append, &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("divide by zero"), "{err}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(files_under(&never), Vec::<String>::new());
}

/// An executor SIGKILLed while the write job runs (its write tasks
/// straggle; the other executor's tasks have staged their files): its
/// tasks run again on the other executor, and the one commit holds every
/// row exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_executor_mid_delta_write_leaves_one_copy_of_every_row() {
    let mut cluster = ProcessCluster::start(Duration::from_secs(10)).await;
    // Stage 0 is the write (the orders scan, then the files): every
    // attempt 0 on the doomed executor sleeps, so it is killed mid-job.
    let doomed_env = [(STRAGGLER_ENV, "0:0:30000,0:1:30000,0:2:30000,0:3:30000")];
    let doomed = cluster.spawn_executor(2, &doomed_env);
    let survivor = cluster.spawn_executor(2, &[]);
    cluster
        .wait_for_executors(&[doomed.clone(), survivor])
        .await;
    let s = cluster.session(&SETTINGS);
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("killed");
    let path = table.to_str().unwrap();
    // Version 0, by deltalake itself: minispark appends to a table it did
    // not create.
    let setup = format!(
        "import pyarrow as pa, deltalake; deltalake.write_deltalake('{path}', \
         pa.table({{'id': pa.array([0], pa.int64()), 'name': ['zero'], 'k': pa.array([0], pa.int64())}})); \
         import os; os._exit(0)"
    );
    let output = output_bounded(
        Command::new(deltalake_python())
            .args(["-c", &setup])
            .stdin(Stdio::null()),
        SCRIPT_TIMEOUT,
        "deltalake creating a table",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sql = format!(
        "CREATE EXTERNAL TABLE killed STORED AS DELTA LOCATION '{path}';
         INSERT INTO killed {}",
        rows("true")
    );
    let write = run_sql(&s, &sql);
    let kill = async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        cluster.kill(&doomed);
    };
    let (got, ()) = timed("INSERT with a killed executor", async {
        tokio::join!(write, kill)
    })
    .await;
    let got = got.unwrap();
    assert_eq!(single_value(&got), ScalarValue::UInt64(Some(15_000)));
    let counters = s.last_job_counters().unwrap();
    assert!(counters.executors_lost >= 1, "{counters}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!table.join("_minispark_staging").exists());
    let read = deltalake_read(path, dir.path(), None, None);
    assert_eq!((read.version, read.rows), (1, 15_001));
    let want = oracle(&typed(&format!(
        "SELECT 0 AS id, 'zero' AS name, 0 AS k UNION ALL {}",
        rows("true")
    )))
    .await;
    assert_result(
        &over_read(&read, ALL).await.batches,
        &want,
        "one copy of every row after a killed executor",
    );
}

/// A Delta table in an S3 bucket (moto's server): created by
/// `write_delta`, appended by SQL, read back by minispark (with time
/// travel) and by deltalake; the log's put-if-absent works on the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_tables_on_s3() {
    use crate::object_store::{MotoServer, as_pairs, server_host};

    let server = MotoServer::start(&server_host());
    let empty = tempfile::tempdir().unwrap();
    let key = server.setup("lake", empty.path(), "", true);
    let cluster = cluster(2).await;
    let mut settings: Vec<(&'static str, String)> =
        SETTINGS.iter().map(|(k, v)| (*k, v.to_string())).collect();
    settings.extend(server.settings(&key.id, &key.secret));
    let pairs = as_pairs(&settings);
    let s = session(&cluster, &pairs);
    let client = remote_session(&cluster, &pairs).await;
    let uri = "s3://lake/events";
    let written = timed(
        "write_delta to S3",
        client
            .sql(&rows(FIRST))
            .await
            .unwrap()
            .write_delta(uri, SaveMode::ErrorIfExists, &["k"]),
    )
    .await
    .unwrap();
    assert_eq!(written, count(&rows(FIRST)).await);
    let sql = format!(
        "CREATE EXTERNAL TABLE events STORED AS DELTA LOCATION '{uri}';
         INSERT INTO events {}",
        rows(APPENDED)
    );
    timed("INSERT INTO on S3", run_sql(&s, &sql)).await.unwrap();
    for (table, options, want) in [
        ("events", "", AFTER_APPEND),
        ("events_v0", "OPTIONS ('version' '0')", FIRST),
    ] {
        let sql = format!(
            "CREATE EXTERNAL TABLE IF NOT EXISTS {table} STORED AS DELTA LOCATION '{uri}' {options};
             SELECT id, name, k FROM {table} ORDER BY id"
        );
        let got = timed("reading S3", run_sql(&s, &sql)).await.unwrap();
        assert_result(&got, &expected(want).await, format!("{table} on S3"));
    }
    let options = serde_json::json!({
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": key.id,
        "AWS_SECRET_ACCESS_KEY": key.secret,
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    })
    .to_string();
    let out = tempfile::tempdir().unwrap();
    let read = deltalake_read(uri, out.path(), None, Some(&options));
    assert_eq!(
        (read.version, read.rows, read.commits),
        (1, count(&rows(AFTER_APPEND)).await, 2)
    );
    assert_result(
        &over_read(&read, ALL).await.batches,
        &expected(AFTER_APPEND).await,
        "deltalake reads the S3 table",
    );
}
