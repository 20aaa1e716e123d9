//! Distributed writes and their commit protocol (`minispark_planner::write`,
//! `minispark_driver::write`): `COPY ... TO` and `INSERT INTO` run in the
//! tasks of the result stage, each writing its own files into a staging
//! folder; the driver commits once (files renamed into place),
//! or, when the job fails, commits nothing and removes the staging folder.
//! Real executor processes; answers checked against single-node DataFusion.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use arrow::datatypes::{DataType, Int32Type};
use datafusion::common::ScalarValue;
use datafusion::prelude::ParquetReadOptions;
use minispark::executor::shuffle_faults::ORPHAN_ATTEMPT_ENV;
use minispark::executor::straggler_faults::STRAGGLER_ENV;
use minispark_planner::session::session_context;

use crate::common::{
    assert_result, cluster, column, oracle_sql, run_sql, session, single_value, timed,
};
use crate::process_cluster::ProcessCluster;

/// Four partitions, none merged by adaptive execution: the write stage has
/// four tasks and every task of a scan of TPC-H orders has rows.
const SETTINGS: [(&str, &str); 2] = [
    ("minispark.shuffle.partitions", "4"),
    ("minispark.adaptive.enabled", "false"),
];

const ORDERS: &str = "SELECT o_orderkey, o_custkey, o_totalprice, o_orderdate, o_orderpriority \
                      FROM tpch.sf0_01.orders";

/// Every file under `dir` (recursively), relative to it, sorted.
pub(crate) fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = vec![];
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The data files under `dir`: everything but `_`-prefixed entries.
fn data_files(dir: &Path) -> Vec<String> {
    files_under(dir)
        .into_iter()
        .filter(|f| !f.split('/').any(|part| part.starts_with('_')))
        .collect()
}

/// Checks Spark's names (`part-<5 digits>-<write id>.c000.<ext>`, one write
/// id for all) and returns the task partitions of the files.
fn task_partitions(files: &[String], ext: &str) -> Vec<usize> {
    let mut ids = BTreeSet::new();
    let partitions = files
        .iter()
        .map(|f| {
            let name = f.rsplit('/').next().unwrap();
            let rest = name
                .strip_prefix("part-")
                .unwrap_or_else(|| panic!("not a part- file: {f}"));
            let (p, rest) = rest.split_once('-').unwrap();
            assert_eq!(p.len(), 5, "{f}");
            let (id, suffix) = rest.split_once('.').unwrap();
            assert_eq!(id.len(), 36, "a UUID-shaped write id: {f}");
            assert_eq!(suffix, format!("c000.{ext}"), "{f}");
            ids.insert(id.to_string());
            p.parse().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one write id per job: {files:?}");
    partitions
}

/// The destination holds data files only: no staging folder (and no
/// `_SUCCESS` marker, which DataFusion's readers would read as data).
fn assert_committed(dir: &Path) {
    let all = files_under(dir);
    assert_eq!(all, data_files(dir), "not only data files");
    assert!(!dir.join("_SUCCESS").exists(), "{all:?}");
    assert!(
        !dir.join("_minispark_staging").exists(),
        "the staging folder was left: {all:?}"
    );
}

/// Nothing was committed to `dir` and no staging file is left (the
/// staging folder is removed at once and again after 2 s: waits for that).
async fn assert_nothing_committed(dir: &Path) {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = files_under(dir);
    assert!(
        data_files(dir).is_empty() && !dir.join("_SUCCESS").exists(),
        "a failed job committed files: {all:?}"
    );
    assert!(all.is_empty(), "a failed job left files: {all:?}");
    assert!(
        !dir.join("_minispark_staging").exists(),
        "a failed job left its staging folder"
    );
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// COPY of a 4-partition scan from 2 executors: one file per task, Spark's
/// names, no staging folder left; read back (by minispark) it gives
/// DataFusion's rows exactly. CSV and JSON go
/// the same way. INSERT INTO an external table over the folder appends
/// files of a second write job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_writes_one_file_per_partition_and_insert_appends() {
    let cluster = cluster(2).await;
    let s = session(&cluster, &SETTINGS);
    let oracle = session_context(&Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("orders");

    // The plan: the write is the result stage, one task per partition.
    let plan = timed(
        "EXPLAIN COPY",
        run_sql(
            &s,
            &format!(
                "EXPLAIN COPY ({ORDERS}) TO '{}' STORED AS PARQUET",
                path(&out)
            ),
        ),
    )
    .await
    .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    assert!(
        text.contains("Stage 0 (4 tasks;") && text.contains("FileWriteExec: parquet"),
        "{text}"
    );

    let got = timed(
        "COPY",
        run_sql(
            &s,
            &format!("COPY ({ORDERS}) TO '{}' STORED AS PARQUET", path(&out)),
        ),
    )
    .await
    .unwrap();
    assert_eq!(single_value(&got), ScalarValue::UInt64(Some(15_000)));
    let files = data_files(&out);
    assert_eq!(
        task_partitions(&files, "parquet"),
        vec![0, 1, 2, 3],
        "{files:?}"
    );
    assert_committed(&out);
    let back = timed(
        "reading the folder back",
        run_sql(
            &s,
            &format!(
                "CREATE EXTERNAL TABLE w STORED AS PARQUET LOCATION '{}'; SELECT * FROM w",
                path(&out)
            ),
        ),
    )
    .await
    .unwrap();
    assert_result(&back, &oracle_sql(&oracle, ORDERS).await, "COPY read back");

    // INSERT INTO the table over the folder: a second job's files join.
    let inserted = timed(
        "INSERT INTO",
        run_sql(
            &s,
            &format!("INSERT INTO w {ORDERS} WHERE o_orderkey < 1000"),
        ),
    )
    .await
    .unwrap();
    let expected_new = oracle_sql(
        &oracle,
        &format!("SELECT count(*) FROM ({ORDERS} WHERE o_orderkey < 1000)"),
    )
    .await;
    let new_rows = match ScalarValue::try_from_array(expected_new.batches[0].column(0), 0).unwrap()
    {
        ScalarValue::Int64(Some(n)) => n as u64,
        other => panic!("{other:?}"),
    };
    assert_eq!(single_value(&inserted), ScalarValue::UInt64(Some(new_rows)));
    let after = data_files(&out);
    assert!(after.len() > files.len(), "{after:?}");
    assert!(files.iter().all(|f| after.contains(f)), "{after:?}");
    assert_committed(&out);
    let back = timed("reading after INSERT", run_sql(&s, "SELECT * FROM w"))
        .await
        .unwrap();
    let both = format!("{ORDERS} UNION ALL {ORDERS} WHERE o_orderkey < 1000");
    assert_result(&back, &oracle_sql(&oracle, &both).await, "after INSERT");

    // CSV and JSON: the same protocol.
    for (format, ext) in [("CSV", "csv"), ("JSON", "json")] {
        let out = dir.path().join(ext);
        let got = timed(
            "COPY",
            run_sql(
                &s,
                &format!("COPY ({ORDERS}) TO '{}' STORED AS {format}", path(&out)),
            ),
        )
        .await
        .unwrap();
        assert_eq!(single_value(&got), ScalarValue::UInt64(Some(15_000)));
        let files = data_files(&out);
        assert_eq!(task_partitions(&files, ext), vec![0, 1, 2, 3], "{files:?}");
        assert_committed(&out);
        let back = timed(
            "reading back",
            run_sql(
                &s,
                &format!(
                    "CREATE EXTERNAL TABLE t_{ext} STORED AS {format} LOCATION '{}'; \
                     SELECT count(*) AS n, sum(o_orderkey) AS s, count(DISTINCT o_custkey) AS c \
                     FROM t_{ext}",
                    path(&out)
                ),
            ),
        )
        .await
        .unwrap();
        let expected = oracle_sql(
            &oracle,
            "SELECT count(*) AS n, sum(o_orderkey) AS s, count(DISTINCT o_custkey) AS c \
             FROM tpch.sf0_01.orders",
        )
        .await;
        assert_result(&back, &expected, format!("{format} read back"));
    }
}

/// `COPY (SELECT ... DISTRIBUTE BY k)`: one file per non-empty shuffle
/// partition, and every file holds exactly the keys of its partition,
/// `pmod(hash(k), 4)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribute_by_writes_one_file_per_partition_holding_its_keys() {
    let cluster = cluster(2).await;
    let s = session(&cluster, &SETTINGS);
    let oracle = session_context(&Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("by_key");
    let query = "SELECT o_custkey % 50 AS k, o_orderkey FROM tpch.sf0_01.orders";
    timed(
        "COPY DISTRIBUTE BY",
        run_sql(
            &s,
            &format!(
                "COPY ({query} DISTRIBUTE BY k) TO '{}' STORED AS PARQUET",
                path(&out)
            ),
        ),
    )
    .await
    .unwrap();
    assert_committed(&out);
    let files = data_files(&out);
    let partitions = task_partitions(&files, "parquet");
    // The partitions that have keys: one file each, no more.
    let used = oracle_sql(
        &oracle,
        "SELECT DISTINCT pmod(hash(o_custkey % 50), 4) AS p FROM tpch.sf0_01.orders",
    )
    .await;
    let used: BTreeSet<i32> = column::<Int32Type>(&used.batches, "p", &DataType::Int32)
        .into_iter()
        .collect();
    assert_eq!(
        partitions
            .iter()
            .map(|&p| p as i32)
            .collect::<BTreeSet<_>>(),
        used,
        "{files:?}"
    );
    assert_eq!(
        partitions.len(),
        used.len(),
        "one file per partition: {files:?}"
    );
    for (file, p) in files.iter().zip(&partitions) {
        let ctx = session_context(&Default::default()).unwrap();
        ctx.register_parquet(
            "f",
            out.join(file).to_str().unwrap(),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
        let got = ctx
            .sql("SELECT DISTINCT pmod(hash(k), 4) AS p FROM f")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let in_file = column::<Int32Type>(&got, "p", &DataType::Int32);
        assert_eq!(
            in_file,
            vec![*p as i32],
            "{file} holds keys of other partitions"
        );
    }
    let back = timed(
        "reading back",
        run_sql(
            &s,
            &format!(
                "CREATE EXTERNAL TABLE d STORED AS PARQUET LOCATION '{}'; SELECT * FROM d",
                path(&out)
            ),
        ),
    )
    .await
    .unwrap();
    assert_result(
        &back,
        &oracle_sql(&oracle, query).await,
        "DISTRIBUTE BY read back",
    );
}

/// `PARTITIONED BY`: each task writes one file per value it has, in the
/// value's `col=value/` folder; read back with the partition column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_by_writes_a_file_per_task_and_value() {
    let cluster = cluster(2).await;
    let s = session(&cluster, &SETTINGS);
    let oracle = session_context(&Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("by_priority");
    let got = timed(
        "COPY PARTITIONED BY",
        run_sql(
            &s,
            &format!(
                "COPY (SELECT o_orderkey, o_totalprice, o_orderpriority FROM tpch.sf0_01.orders) \
                 TO '{}' STORED AS PARQUET PARTITIONED BY (o_orderpriority)",
                path(&out)
            ),
        ),
    )
    .await
    .unwrap();
    assert_eq!(single_value(&got), ScalarValue::UInt64(Some(15_000)));
    assert_committed(&out);
    let files = data_files(&out);
    let folders: BTreeSet<&str> = files.iter().map(|f| f.split('/').next().unwrap()).collect();
    assert_eq!(folders.len(), 5, "{files:?}");
    assert!(
        folders.iter().all(|f| f.starts_with("o_orderpriority=")),
        "{folders:?}"
    );
    for folder in &folders {
        let in_folder: Vec<String> = files
            .iter()
            .filter(|f| f.starts_with(&format!("{folder}/")))
            .cloned()
            .collect();
        let partitions = task_partitions(&in_folder, "parquet");
        // Every task has every priority: one file of each task per folder.
        assert_eq!(partitions, vec![0, 1, 2, 3], "{in_folder:?}");
    }
    let back = timed(
        "reading back",
        run_sql(
            &s,
            &format!(
                "CREATE EXTERNAL TABLE p STORED AS PARQUET PARTITIONED BY (o_orderpriority) \
                 LOCATION '{}'; \
                 SELECT o_orderkey, o_totalprice, CAST(o_orderpriority AS VARCHAR) AS o_orderpriority FROM p",
                path(&out)
            ),
        ),
    )
    .await
    .unwrap();
    let expected = oracle_sql(
        &oracle,
        "SELECT o_orderkey, o_totalprice, o_orderpriority FROM tpch.sf0_01.orders",
    )
    .await;
    assert_result(&back, &expected, "PARTITIONED BY read back");
}

/// A job that fails (a division by zero in one task, after other tasks
/// wrote their files) commits nothing and leaves no staging file; a
/// destination under a regular file fails naming it, with nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_commits_nothing() {
    let cluster = cluster(2).await;
    let s = session(&cluster, &SETTINGS);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let err = timed(
        "a failing COPY",
        run_sql(
            &s,
            &format!(
                "COPY (SELECT o_orderkey, 10 / (o_orderkey - 7) AS x FROM tpch.sf0_01.orders) \
                 TO '{}' STORED AS PARQUET",
                path(&out)
            ),
        ),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("divide by zero"),
        "{err}"
    );
    assert_nothing_committed(&out).await;

    let file = dir.path().join("afile.txt");
    std::fs::write(&file, "a plain file\n").unwrap();
    let err = timed(
        "a COPY under a file",
        run_sql(
            &s,
            &format!(
                "COPY ({ORDERS}) TO '{}/out/' STORED AS PARQUET",
                path(&file)
            ),
        ),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("afile.txt"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "a plain file\n");
}

/// A write task's attempt 0 is answered as failed while it runs on and
/// writes its files (an injected fault): the retry writes them again on the
/// other executor, and the commit takes one attempt's files: every row
/// once, no staging folder left once the orphaned attempt is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_task_leaves_one_copy_of_every_row() {
    let mut cluster = ProcessCluster::start(Duration::from_secs(10)).await;
    // Stage 0 (the write: a scan then the files), partition 1, attempt 0;
    // it commits its result 3 s later.
    let orphan = [(ORPHAN_ATTEMPT_ENV, "0:1:0:3000")];
    let ids = [
        cluster.spawn_executor(2, &orphan),
        cluster.spawn_executor(2, &orphan),
    ];
    cluster.wait_for_executors(&ids).await;
    let s = cluster.session(&SETTINGS);
    let oracle = session_context(&Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("retried");
    let got = timed(
        "COPY with a retried task",
        run_sql(
            &s,
            &format!("COPY ({ORDERS}) TO '{}' STORED AS PARQUET", path(&out)),
        ),
    )
    .await
    .unwrap();
    assert_eq!(single_value(&got), ScalarValue::UInt64(Some(15_000)));
    let counters = s.last_job_counters().unwrap();
    assert!(counters.failed_attempts >= 1, "{counters}");
    // The orphaned attempt is over (3 s), and the second removal pass of
    // the staging folder (2 s after the commit) has run.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_committed(&out);
    let files = data_files(&out);
    assert_eq!(
        task_partitions(&files, "parquet"),
        vec![0, 1, 2, 3],
        "{files:?}"
    );
    let back = timed(
        "reading back",
        run_sql(
            &s,
            &format!(
                "CREATE EXTERNAL TABLE r STORED AS PARQUET LOCATION '{}'; SELECT * FROM r",
                path(&out)
            ),
        ),
    )
    .await
    .unwrap();
    assert_result(
        &back,
        &oracle_sql(&oracle, ORDERS).await,
        "retried write read back",
    );
}

/// With speculation, a straggling write task gets a second attempt on the
/// other executor; the first to finish is committed, once. (The write
/// stage reads a shuffle, so its tasks are quick and the straggler stands
/// out at once.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_speculative_write_commits_once() {
    const SLEEP: Duration = Duration::from_secs(30);
    let mut cluster = ProcessCluster::start(Duration::from_secs(10)).await;
    // Stage 1 (the write, after the DISTRIBUTE BY shuffle), partition 2.
    let straggler = format!("1:2:{}", SLEEP.as_millis());
    let env = [(STRAGGLER_ENV, straggler.as_str())];
    let ids = [
        cluster.spawn_executor(2, &env),
        cluster.spawn_executor(2, &env),
    ];
    cluster.wait_for_executors(&ids).await;
    let mut settings = SETTINGS.to_vec();
    settings.push(("minispark.speculation", "true"));
    let s = cluster.session(&settings);
    let oracle = session_context(&Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("speculated");
    let query = "SELECT value AS v, value % 7 AS m FROM generate_series(1, 20000)";
    let start = Instant::now();
    timed(
        "COPY with a straggler",
        run_sql(
            &s,
            &format!(
                "COPY ({query} DISTRIBUTE BY v) TO '{}' STORED AS PARQUET",
                path(&out)
            ),
        ),
    )
    .await
    .unwrap();
    let counters = s.last_job_counters().unwrap();
    assert!(counters.speculative_attempts >= 1, "{counters}");
    assert!(
        start.elapsed() < SLEEP / 2,
        "{:?} {counters}",
        start.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_committed(&out);
    let files = data_files(&out);
    assert_eq!(
        task_partitions(&files, "parquet"),
        vec![0, 1, 2, 3],
        "{files:?}"
    );
    let back = timed(
        "reading back",
        run_sql(
            &s,
            &format!(
                "CREATE EXTERNAL TABLE sp STORED AS PARQUET LOCATION '{}'; SELECT * FROM sp",
                path(&out)
            ),
        ),
    )
    .await
    .unwrap();
    assert_result(
        &back,
        &oracle_sql(&oracle, query).await,
        "speculative write read back",
    );
}

/// COPY into an S3 bucket (moto's server) from 2 executors: the commit
/// renames inside the bucket (a copy, then a delete) and leaves no staging
/// object; the bucket's files read back exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_to_s3_commits_inside_the_bucket() {
    use datafusion::execution::object_store::ObjectStoreUrl;
    use datafusion::object_store::path::Path as StorePath;
    use futures::TryStreamExt;

    use crate::object_store::{MotoServer, server_host};

    let server = MotoServer::start(&server_host());
    let empty = tempfile::tempdir().unwrap();
    let key = server.setup("writes", empty.path(), "", true);
    let cluster = cluster(2).await;
    let mut settings: Vec<(&str, String)> =
        SETTINGS.iter().map(|(k, v)| (*k, v.to_string())).collect();
    settings.extend(server.settings(&key.id, &key.secret));
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = session(&cluster, &pairs);
    let oracle = session_context(&Default::default()).unwrap();
    let got = timed(
        "COPY to S3",
        run_sql(
            &s,
            &format!("COPY ({ORDERS}) TO 's3://writes/out/' STORED AS PARQUET"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(single_value(&got), ScalarValue::UInt64(Some(15_000)));
    let store = s
        .context()
        .runtime_env()
        .object_store(ObjectStoreUrl::parse("s3://writes").unwrap())
        .unwrap();
    let objects: Vec<String> = store
        .list(Some(&StorePath::from("out")))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert!(
        !objects.iter().any(|o| o.contains("_minispark_staging")),
        "{objects:?}"
    );
    let data: Vec<String> = objects
        .iter()
        .map(|o| o.trim_start_matches("out/").to_string())
        .collect();
    assert_eq!(
        task_partitions(&data, "parquet"),
        vec![0, 1, 2, 3],
        "{objects:?}"
    );
    let back = timed(
        "reading the bucket back",
        run_sql(
            &s,
            "CREATE EXTERNAL TABLE s3w STORED AS PARQUET LOCATION 's3://writes/out/'; \
             SELECT * FROM s3w",
        ),
    )
    .await
    .unwrap();
    assert_result(&back, &oracle_sql(&oracle, ORDERS).await, "S3 read back");
}
