//! Bad input gets a clear error that names what is wrong, and the cluster
//! keeps serving.

use std::io::Write;

use datafusion::common::ScalarValue;

use crate::common::{
    assert_result, cluster, oracle_sql, row_count, run_sql, session, single_value, timed,
};

async fn expect_error(session: &minispark::driver::job::JobSession, sql: &str) -> String {
    match timed(sql, run_sql(session, sql)).await {
        Ok(_) => panic!("expected an error from: {sql}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_clear_and_the_cluster_survives() {
    let cluster = cluster(2).await;
    let s = session(&cluster, &[]);

    let msg = expect_error(&s, "SELECT 1;\nSELEC x FROM t").await;
    assert!(
        msg.contains("Line: 2") && msg.contains("Column: 1"),
        "{msg}"
    );

    let msg = expect_error(&s, "SELECT * FROM no_such_table").await;
    assert!(msg.contains("no_such_table"), "{msg}");

    let msg = expect_error(&s, "SELECT no_such_column FROM tpch.sf0_01.nation").await;
    assert!(msg.contains("no_such_column"), "{msg}");

    let msg = expect_error(
        &s,
        "CREATE EXTERNAL TABLE gone STORED AS PARQUET LOCATION '/nonexistent/minispark/gone.parquet'; SELECT * FROM gone",
    )
    .await;
    assert!(msg.contains("/nonexistent/minispark/gone.parquet"), "{msg}");

    let msg = expect_error(&s, "SET minispark.no_such_setting = 1").await;
    assert!(msg.contains("minispark.no_such_setting"), "{msg}");

    // CREATE TABLE AS SELECT would run on the driver alone: refused.
    let msg = expect_error(&s, "CREATE TABLE n AS SELECT * FROM tpch.sf0_01.nation").await;
    assert!(
        msg.contains("CREATE TABLE n AS SELECT is not supported"),
        "{msg}"
    );

    // A corrupt Parquet file: the error names the file.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.parquet");
    std::fs::File::create(&bad)
        .unwrap()
        .write_all(b"this is not parquet at all, not even close")
        .unwrap();
    let msg = expect_error(
        &s,
        &format!(
            "CREATE EXTERNAL TABLE bad STORED AS PARQUET LOCATION '{}'; SELECT * FROM bad",
            bad.display()
        ),
    )
    .await;
    assert!(msg.contains("bad.parquet"), "{msg}");

    // A failure inside an executor reaches us with the executor id and the
    // original message.
    let csv = dir.path().join("numbers.csv");
    std::fs::write(&csv, "n\n1\n2\nnot-a-number\n").unwrap();
    let msg = expect_error(
        &s,
        &format!(
            "CREATE EXTERNAL TABLE numbers (n VARCHAR) STORED AS CSV LOCATION '{}' OPTIONS ('format.has_header' 'true');
             SELECT CAST(n AS INT) + 1 FROM numbers",
            csv.display()
        ),
    )
    .await;
    assert!(msg.contains("on executor exec-"), "{msg}");
    assert!(msg.contains("not-a-number"), "{msg}");

    // The cluster still serves the next job.
    let rows = timed(
        "next job",
        run_sql(&s, "SELECT count(*) FROM tpch.sf0_01.nation"),
    )
    .await
    .unwrap();
    assert_eq!(single_value(&rows), ScalarValue::Int64(Some(25)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_driver_and_busy_port() {
    let msg = minispark::client::run_script_remote(
        "http://127.0.0.1:1",
        &Default::default(),
        "SELECT 1",
        Default::default(),
        &mut |_| Ok(()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(msg.contains("driver at http://127.0.0.1:1"), "{msg}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = minispark::driver::Driver::start(minispark::driver::DriverOptions {
        listen: addr.clone(),
        ..Default::default()
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&addr) && err.contains("cannot listen"),
        "{err}"
    );
}

/// A plan far larger than gRPC's default 4 MiB message limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_plans_are_shipped() {
    let cluster = cluster(1).await;
    let s = session(&cluster, &[("minispark.shuffle.partitions", "2")]);
    let values: Vec<String> = (0..300_000).map(|i| format!("'key-{i:08}'")).collect();
    let sql = format!(
        "SELECT count(*) FROM tpch.sf0_01.nation WHERE n_name IN ({}) OR n_nationkey < 3",
        values.join(", ")
    );
    assert!(sql.len() > 4 << 20);
    let rows = timed("huge plan", run_sql(&s, &sql)).await.unwrap();
    assert_eq!(single_value(&rows), ScalarValue::Int64(Some(3)));
}

/// An executor that dies is replaced by the others: the job still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_death_is_survived() {
    let mut cluster = cluster(2).await;
    cluster.kill_executor(0).unwrap();
    let s = session(&cluster, &[("minispark.shuffle.partitions", "4")]);
    let rows = timed(
        "job after an executor died",
        run_sql(
            &s,
            "SELECT n_regionkey, count(*) FROM tpch.sf0_01.nation GROUP BY 1",
        ),
    )
    .await
    .unwrap();
    assert_eq!(row_count(&rows), 5);
}

/// Through the command line: a bad script exits non-zero with the message.
#[test]
fn cli_reports_errors_with_nonzero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad.sql");
    std::fs::write(&script, "SELECT * FROM missing_table;").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minispark"))
        .args(["submit", script.to_str().unwrap(), "--master", "local[1]"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing_table"), "{stderr}");
}

/// Shuffle files live only as long as their job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_files_are_removed_when_the_job_ends() {
    let cluster = cluster(2).await;
    let s = session(&cluster, &[("minispark.shuffle.partitions", "3")]);
    let job_dirs = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(cluster.work_dir())
            .unwrap()
            .flat_map(|e| std::fs::read_dir(e.unwrap().path()).into_iter().flatten())
            .map(|e| e.unwrap().path())
            // A job's directory is named after it; `spill/` is the
            // executor's own (its memory's spill files, see executor/src/memory.rs).
            .filter(|p| p.file_name().is_some_and(|n| n != "spill"))
            .collect()
    };
    // The job has run but its result is not read yet: its blocks are on disk.
    let statement = minispark::driver::job::parse_script(
        "SELECT o_custkey % 10, count(*) FROM tpch.sf0_01.orders GROUP BY 1",
    )
    .unwrap()
    .remove(0);
    let result = timed("shuffle job", s.execute_statement(statement))
        .await
        .unwrap();
    assert!(!job_dirs().is_empty(), "the job wrote no shuffle files");
    let mut stream = result.stream;
    let mut rows = vec![];
    while let Some(b) = futures::StreamExt::next(&mut stream).await {
        rows.push(b.unwrap());
    }
    assert_eq!(row_count(&rows), 10);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !job_dirs().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "left behind: {:?}",
            job_dirs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// An executor killed while its tasks run: they are relaunched on the other
/// executor, lost shuffle output is recomputed, and the answer is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_killed_mid_job() {
    let mut cluster = cluster(2).await;
    let s = session(&cluster, &[("minispark.shuffle.partitions", "4")]);
    let sql = "SELECT l_returnflag, l_linestatus, count(*), sum(l_quantity) FROM tpch.sf0_1.lineitem GROUP BY 1, 2";
    let job = {
        let s = s.clone();
        tokio::spawn(async move { run_sql(&s, sql).await })
    };
    crate::common::wait_for_running_tasks(&cluster).await;
    cluster.kill_executor(0).unwrap();
    let got = timed("job surviving a killed executor", job)
        .await
        .unwrap()
        .unwrap();
    let oracle = minispark::planner::session::session_context(&Default::default()).unwrap();
    let expected = oracle_sql(&oracle, sql).await;
    assert_result(&got, &expected, "a job surviving a killed executor");
    // The kill landed while the job ran: the job saw it and recovered.
    let counters = s.last_job_counters().expect("the job's counters");
    assert!(
        counters.had_failures(),
        "the kill missed the job: {counters}"
    );
    assert!(counters.executors_lost >= 1, "{counters}");
    assert!(
        counters.task_attempts > counters.failed_attempts,
        "{counters}"
    );
}

/// A value that reads like a fetch failure is only a value: the executor
/// reports a fetch failure by its error's type, never by its text. A cast
/// error quoting `FetchFailed(exec-1)` is the task's own failure, one that
/// depends only on the data: it fails the job at its first attempt (no
/// retry, whatever task.maxFailures says); no executor is declared lost,
/// and the cluster serves the next job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_that_looks_like_a_fetch_failure_evicts_no_executor() {
    let cluster = cluster(2).await;
    let s = session(
        &cluster,
        &[
            ("minispark.shuffle.partitions", "2"),
            ("minispark.task.maxFailures", "4"),
        ],
    );
    // A column in the cast, so it runs in the executors' tasks.
    let msg = expect_error(
        &s,
        "SELECT CAST('FetchFailed(exec-1): ' || n_name AS INT) FROM tpch.sf0_01.nation",
    )
    .await;
    assert!(msg.contains("FetchFailed(exec-1): "), "{msg}");
    assert!(msg.contains("Cannot cast"), "{msg}");
    assert!(
        msg.contains("not retried: this error depends only on the data and the plan"),
        "{msg}"
    );
    let counters = s.last_job_counters().expect("the failed job's counters");
    assert_eq!(counters.executors_lost, 0, "{counters}");
    assert_eq!(counters.recomputed_map_outputs, 0, "{counters}");
    assert!(counters.failed_attempts >= 1, "{counters}");
    // The stage has at most 2 tasks (2 partitions), each attempted once,
    // where task.maxFailures = 4 would have allowed 4 attempts each.
    assert!(counters.task_attempts <= 2, "{counters}");
    assert_eq!(cluster.driver.cluster.size().0, 2);

    let rows = timed(
        "next job",
        run_sql(&s, "SELECT count(*) FROM tpch.sf0_01.nation"),
    )
    .await
    .unwrap();
    assert_eq!(single_value(&rows), ScalarValue::Int64(Some(25)));
    let counters = s.last_job_counters().expect("counters");
    assert_eq!(counters.failed_attempts, 0, "{counters}");
    assert_eq!(counters.executors_lost, 0, "{counters}");
}
