//! Shared test fixtures: clusters, data, result comparison (the rules are
//! in `compare.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use arrow::array::RecordBatch;
use datafusion::common::Result;
use futures::StreamExt;
use minispark::driver::job::JobSession;
use minispark::local::{LocalCluster, LocalClusterOptions};

pub use crate::compare::{Expected, assert_result};

/// Upper bound for any single test step that talks to a cluster.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `fut`, failing the test if it takes longer than [`STEP_TIMEOUT`].
pub async fn timed<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP_TIMEOUT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what} did not finish within {STEP_TIMEOUT:?}"),
    }
}

/// A local cluster of `executors` processes of the freshly built binary.
/// Dropping it kills the processes.
pub async fn cluster(executors: usize) -> LocalCluster {
    let options = LocalClusterOptions {
        executors,
        slots: 2,
        binary: PathBuf::from(env!("CARGO_BIN_EXE_minispark")),
        heartbeat_timeout: Duration::from_secs(3),
        in_process: false,
        memory: None,
        ui: None,
    };
    let mut cluster = timed("starting a cluster", LocalCluster::start(options))
        .await
        .expect("cluster starts");
    // A fetch from a killed executor is retried 1 s, 2 s and 4 s later
    // (not 5, 10 and 20 s): by then the 3 s heartbeat timeout has declared
    // it lost, and the task's failure recomputes its output.
    cluster
        .driver
        .default_settings
        .insert("minispark.shuffle.io.retryWait".into(), "1s".into());
    cluster
}

/// TPC-H at scale factor 0.01 as Parquet, generated once per test run.
pub fn tpch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("minispark-test-tpch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        minispark::datagen::tpch::write_tpch_parquet(0.01, &dir).expect("generate TPC-H");
        dir
    })
}

/// TPC-H at scale factor 0.1 as Parquet, generated once per test run.
pub fn tpch_sf0_1_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("minispark-test-tpch-sf0_1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        minispark::datagen::tpch::write_tpch_parquet(0.1, &dir).expect("generate TPC-H");
        dir
    })
}

pub const TPCH_TABLES: [&str; 8] = [
    "nation", "region", "part", "supplier", "partsupp", "customer", "orders", "lineitem",
];

/// DDL registering the TPC-H Parquet tables under their plain names.
pub fn tpch_ddl() -> String {
    tpch_ddl_in(tpch_dir())
}

/// DDL registering the TPC-H Parquet tables of `dir` under their plain names.
pub fn tpch_ddl_in(dir: &Path) -> String {
    TPCH_TABLES
        .iter()
        .map(|t| {
            format!(
                "CREATE EXTERNAL TABLE {t} STORED AS PARQUET LOCATION '{}/';\n",
                dir.join(t).display()
            )
        })
        .collect()
}

/// Runs a script in a session and returns the batches of its last query.
pub async fn run_sql(session: &JobSession, script: &str) -> Result<Vec<RecordBatch>> {
    let mut last = vec![];
    for statement in minispark::driver::job::parse_script(script)? {
        let result = session.execute_statement(statement).await?;
        if result.returns_rows {
            let mut stream = result.stream;
            let mut batches = vec![];
            while let Some(b) = stream.next().await {
                batches.push(b?);
            }
            last = batches;
        }
    }
    Ok(last)
}

/// A new session with `settings`.
pub fn session(cluster: &LocalCluster, settings: &[(&str, &str)]) -> JobSession {
    let settings: HashMap<String, String> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    cluster.driver.session(&settings).expect("session")
}

/// The oracle's answer to `sql`: single-node DataFusion in `ctx`.
pub async fn oracle_sql(ctx: &datafusion::prelude::SessionContext, sql: &str) -> Expected {
    let df = ctx
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("the oracle cannot plan {sql}: {e}"));
    Expected::from_dataframe(df)
        .await
        .unwrap_or_else(|e| panic!("the oracle cannot run {sql}: {e}"))
}

/// The number of rows in `batches`.
pub fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

/// Column `name` of `batches`, cast to `as_type` (of Arrow type `T`), as values.
pub fn column<T: arrow::datatypes::ArrowPrimitiveType>(
    batches: &[RecordBatch],
    name: &str,
    as_type: &arrow::datatypes::DataType,
) -> Vec<T::Native> {
    use arrow::array::AsArray;
    batches
        .iter()
        .flat_map(|b| {
            let c = arrow::compute::cast(b.column_by_name(name).unwrap(), as_type).unwrap();
            c.as_primitive::<T>().values().to_vec()
        })
        .collect()
}

/// Column `name` of `batches` as strings (cast to `Utf8`; no NULLs expected).
pub fn column_strings(batches: &[RecordBatch], name: &str) -> Vec<String> {
    use arrow::array::{Array, AsArray};
    batches
        .iter()
        .flat_map(|b| {
            let c = arrow::compute::cast(
                b.column_by_name(name).unwrap(),
                &arrow::datatypes::DataType::Utf8,
            )
            .unwrap();
            let c = c.as_string::<i32>();
            (0..c.len())
                .map(|i| c.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The one value of a one-row, one-column result.
pub fn single_value(batches: &[RecordBatch]) -> datafusion::common::ScalarValue {
    assert_eq!(row_count(batches), 1, "one row expected: {batches:?}");
    let batch = batches.iter().find(|b| b.num_rows() == 1).unwrap();
    assert_eq!(batch.num_columns(), 1, "one column expected: {batch:?}");
    datafusion::common::ScalarValue::try_from_array(batch.column(0), 0).unwrap()
}

/// A DataFrame-API session on `cluster`'s driver over gRPC, as a remote
/// client sees it (plans travel serialized), with `settings`.
pub async fn remote_session(
    cluster: &LocalCluster,
    settings: &[(&str, &str)],
) -> minispark::Session {
    let mut builder = minispark::Session::builder()
        .master(cluster.driver.url())
        .security(cluster.security().clone());
    for (k, v) in settings {
        builder = builder.config(*k, *v);
    }
    timed("connecting a session", builder.build())
        .await
        .expect("session connects")
}

#[path = "../benches/common/examples.rs"]
mod examples_list;
pub use examples_list::netflix_sql_examples;

/// One skewed join per join type that may keep the events apart: the
/// events (`v`, hot title 145) joined to a third-less titles table (`t`),
/// grouped with COUNT(DISTINCT) and AVG. `hint` goes after SELECT.
pub struct SkewedJoin {
    pub name: &'static str,
    from: String,
    /// Whether the output has columns of both sides (not a semi/anti join).
    both_sides: bool,
}

impl SkewedJoin {
    pub fn sql(&self, hint: &str) -> String {
        let (columns, group) = if self.both_sides {
            (
                "v.device, t.kind, count(*), count(DISTINCT v.user_id), avg(v.watched_minutes), count(t.title)",
                "v.device, t.kind",
            )
        } else {
            (
                "v.device, count(*), count(DISTINCT v.user_id), avg(v.watched_minutes)",
                "v.device",
            )
        };
        format!(
            "SELECT {hint} {columns} FROM {} GROUP BY {group}",
            self.from
        )
    }
}

/// INNER, LEFT, RIGHT, LEFT SEMI, LEFT ANTI and RIGHT SEMI joins of the
/// skewed events of `netflix.small`.
pub fn skewed_joins() -> Vec<SkewedJoin> {
    let titles = "(SELECT * FROM netflix.small.titles WHERE title_id % 3 <> 0)";
    let events = "netflix.small.viewing_events";
    let on = "ON v.title_id = t.title_id";
    [
        ("INNER", format!("{events} v JOIN {titles} t {on}"), true),
        (
            "LEFT",
            format!("{events} v LEFT JOIN {titles} t {on}"),
            true,
        ),
        (
            "RIGHT",
            format!("{titles} t RIGHT JOIN {events} v {on}"),
            true,
        ),
        (
            "LEFT SEMI",
            format!("{events} v LEFT SEMI JOIN {titles} t {on}"),
            false,
        ),
        (
            "LEFT ANTI",
            format!("{events} v LEFT ANTI JOIN {titles} t {on}"),
            false,
        ),
        (
            "RIGHT SEMI",
            format!("{titles} t RIGHT SEMI JOIN {events} v {on}"),
            false,
        ),
    ]
    .into_iter()
    .map(|(name, from, both_sides)| SkewedJoin {
        name,
        from,
        both_sides,
    })
    .collect()
}

/// Waits (at most a minute) until `cluster` runs a task: a job submitted
/// in the background has started.
pub async fn wait_for_running_tasks(cluster: &LocalCluster) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while cluster.driver.cluster.running_tasks() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the job never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Waits (at most a minute) until executor `i` of `cluster` has committed
/// a map output (`stage-<s>/map-<m>/index` in its work dir): killing it
/// from then on loses output a running job still needs.
pub async fn wait_for_a_map_output_on(cluster: &LocalCluster, i: usize) {
    fn has_committed_index(dir: &std::path::Path) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().any(|e| {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "index" {
                let parent = path.parent().and_then(|p| p.file_name());
                return parent.is_some_and(|p| {
                    let p = p.to_string_lossy();
                    p.starts_with("map-") && !p.ends_with(".tmp")
                });
            }
            path.is_dir() && has_committed_index(&path)
        })
    }
    let dir = cluster.work_dir().join(format!("executor-{i}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !has_committed_index(&dir) {
        assert!(
            std::time::Instant::now() < deadline,
            "executor {i} committed no map output within a minute ({})",
            dir.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
