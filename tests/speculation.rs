//! Stragglers and hung tasks: speculative execution beats a slow task, and
//! `minispark.task.timeout` fails and retries one. The straggler is a
//! test-only sleep in the first attempt of one task
//! (`minispark_executor::straggler_faults`), set in the environment of this
//! test's own executor processes only.

use std::time::{Duration, Instant};

use minispark::executor::straggler_faults::STRAGGLER_ENV;

use crate::common::{assert_result, oracle_sql, run_sql, timed};
use crate::process_cluster::ProcessCluster;

/// How long the straggler sleeps in the speculation test.
const SLEEP: Duration = Duration::from_secs(30);
/// The timeout test's straggler sleeps longer, and its timeout is well
/// above what a task of a debug build takes, even while the whole suite
/// runs on two cores (tasks of 8 s were seen then).
const HUNG: Duration = Duration::from_secs(90);
const TIMEOUT: &str = "15s";

/// A GROUP BY over 4 shuffle partitions (adaptive execution off, so the
/// reduce stage keeps its 4 tasks): stage 1 is the reduce stage, and its
/// partition 2 is the straggler.
const SQL: &str = "SELECT o_orderpriority, count(*), sum(o_totalprice) \
                   FROM tpch.sf0_01.orders GROUP BY o_orderpriority";

fn straggler(sleep: Duration) -> String {
    format!("1:2:{}", sleep.as_millis())
}

/// Two executors of 2 slots, both with the straggler in their environment
/// (only attempt 0 of stage 1 partition 2 sleeps).
async fn straggler_cluster(sleep: Duration) -> ProcessCluster {
    let mut cluster = ProcessCluster::start(Duration::from_secs(10)).await;
    let env = straggler(sleep);
    let ids = [
        cluster.spawn_executor(2, &[(STRAGGLER_ENV, &env)]),
        cluster.spawn_executor(2, &[(STRAGGLER_ENV, &env)]),
    ];
    cluster.wait_for_executors(&ids).await;
    cluster
}

const BASE: [(&str, &str); 2] = [
    ("minispark.shuffle.partitions", "4"),
    ("minispark.adaptive.enabled", "false"),
];

/// With speculation on, a second attempt of the straggler runs on the other
/// executor and wins: the job ends in under half the straggler's sleep.
/// With it off, the same job waits for the sleep. Both answers are right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speculation_beats_a_straggler() {
    let cluster = straggler_cluster(SLEEP).await;
    let oracle = minispark::planner::session::session_context(&Default::default()).unwrap();
    let expected = oracle_sql(&oracle, SQL).await;

    // The straggler really is stage 1 partition 2 of a 4-task stage.
    let explain = cluster.session(&BASE);
    let plan = timed("explain", run_sql(&explain, &format!("EXPLAIN {SQL}")))
        .await
        .unwrap();
    let text = format!(
        "{}",
        arrow::util::pretty::pretty_format_batches(&plan).unwrap()
    );
    assert!(text.contains("Stage 1 (4 tasks;"), "{text}");

    let mut settings = BASE.to_vec();
    settings.push(("minispark.speculation", "true"));
    let on = cluster.session(&settings);
    let start = Instant::now();
    let got = timed("job with speculation", run_sql(&on, SQL))
        .await
        .unwrap();
    let fast = start.elapsed();
    assert_result(&got, &expected, "the job with speculation");
    let counters = on.last_job_counters().unwrap();
    assert!(
        fast < SLEEP / 2,
        "speculation did not beat the straggler: {fast:?} ({counters})"
    );
    assert!(counters.speculative_attempts >= 1, "{counters}");
    // The loser was cancelled, not failed.
    assert_eq!(counters.failed_attempts, 0, "{counters}");
    assert_eq!(counters.executors_lost, 0, "{counters}");
    // The loser does not sleep on: its executor runs nothing soon after
    // (heartbeats report running tasks every 250 ms).
    let deadline = Instant::now() + SLEEP / 4;
    while cluster.driver.cluster.running_tasks() > 0 {
        assert!(Instant::now() < deadline, "the losing attempt still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let off = cluster.session(&BASE);
    let start = Instant::now();
    let got = timed("job without speculation", run_sql(&off, SQL))
        .await
        .unwrap();
    let slow = start.elapsed();
    assert_result(&got, &expected, "the job without speculation");
    let counters = off.last_job_counters().unwrap();
    assert!(
        slow >= SLEEP,
        "the straggler did not slow the job: {slow:?}"
    );
    assert_eq!(counters.speculative_attempts, 0, "{counters}");
}

/// A task attempt with no result within `minispark.task.timeout` is
/// cancelled, counted as failed and timed out, and retried: the retry (a
/// new attempt, which does not sleep) answers right, long before the
/// sleep is over. With `maxFailures = 1` the timeout fails the job and the
/// error names the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_past_its_timeout_is_retried() {
    let cluster = straggler_cluster(HUNG).await;
    let oracle = minispark::planner::session::session_context(&Default::default()).unwrap();
    let expected = oracle_sql(&oracle, SQL).await;

    let mut settings = BASE.to_vec();
    settings.push(("minispark.task.timeout", TIMEOUT));
    let s = cluster.session(&settings);
    let start = Instant::now();
    let got = timed("job with a timeout", run_sql(&s, SQL)).await.unwrap();
    let took = start.elapsed();
    assert_result(&got, &expected, "the job whose straggler timed out");
    let counters = s.last_job_counters().unwrap();
    assert!(
        took >= Duration::from_secs(15) && took < HUNG / 2,
        "{took:?} ({counters})"
    );
    // The straggler timed out (and nothing else failed).
    assert!(counters.timed_out_attempts >= 1, "{counters}");
    assert_eq!(
        counters.failed_attempts, counters.timed_out_attempts,
        "{counters}"
    );
    assert_eq!(counters.executors_lost, 0, "{counters}");

    settings.push(("minispark.task.maxFailures", "1"));
    let s = cluster.session(&settings);
    let err = timed("job failed by its timeout", run_sql(&s, SQL))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("failed 1 times (minispark.task.maxFailures = 1)")
            && err.contains("no result within minispark.task.timeout = 15s"),
        "{err}"
    );
    // The executors live on: a job without the timeout still runs.
    assert_eq!(cluster.driver.cluster.size().0, 2);
}
