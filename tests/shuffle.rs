//! A shuffle that never loses a row, on real executor processes with the
//! test-only faults of `executor/src/shuffle_faults.rs`:
//!
//! * two attempts of one map task race (the first attempt's call is
//!   answered as failed while it runs on and waits before its commit; the
//!   driver's retry runs on another executor sharing the same work dir):
//!   exactly one output is committed for that map partition, the loser's
//!   files are gone, and the answer is right;
//! * the first fetches an executor serves answer `Unavailable`: the
//!   readers retry, the job succeeds, and no executor is declared lost;
//! * a fetch answers `NotFound` (the block is gone): that map output is
//!   computed again, the job succeeds, no executor is declared lost;
//! * every fetch answers `Unavailable`: once its retries are spent the
//!   reduce task fails (and is retried as a task until the job fails), and
//!   still no executor is declared lost;
//! * the first fetches never answer: `minispark.shuffle.io.connectionTimeout`
//!   fails them and they are retried, the job succeeds, no task fails;
//! * every block of one stage is served late: a reduce task's fetches
//!   overlap (its time is about one delay, not one per block), and a tiny
//!   `minispark.reducer.maxSizeInFlight` makes them one after the other.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use minispark::driver::{Driver, DriverOptions};
use minispark::executor::shuffle_faults::{
    FETCH_DELAY_ENV, FETCH_HANG_ENV, FETCH_NOT_FOUND_ENV, FETCH_UNAVAILABLE_ENV, ORPHAN_ATTEMPT_ENV,
};
use minispark::executor::shuffle_index::ShuffleIndex;
use minispark::proto::Security;
use minispark::proto::auth::{SECRET_ENV, Secret};

use crate::common::{assert_result, oracle_sql, timed};
use crate::processes::{Processes, collect_lines};

/// A GROUP BY over many keys: every reduce partition reads blocks of every
/// map task.
const SQL: &str = "SELECT o_custkey % 97 AS k, count(*) AS n, sum(o_totalprice) AS total \
                   FROM tpch.sf0_01.orders GROUP BY 1";

/// A driver in this process and executor processes with faults.
struct FaultyCluster {
    driver: Driver,
    logs: Vec<Arc<Mutex<Vec<String>>>>,
    work: tempfile::TempDir,
    _procs: Processes,
}

impl FaultyCluster {
    /// One executor per entry: the name of its work dir under the
    /// cluster's temp dir (executors given the same name share it) and its
    /// fault variables.
    async fn start(executors: &[(&str, &[(&str, &str)])]) -> Self {
        let (secret, secret_text) = Secret::random().unwrap();
        let driver = Driver::start(DriverOptions {
            listen: "127.0.0.1:0".into(),
            // No test here needs a loss found fast; a loaded machine (the
            // oracle runs in this process) must not look like a lost executor.
            heartbeat_timeout: Duration::from_secs(10),
            security: Security::with_secret(secret),
            ..Default::default()
        })
        .await
        .unwrap();
        let work = tempfile::tempdir().unwrap();
        let mut procs = Processes::default();
        let mut logs = vec![];
        for (i, (dir, env)) in executors.iter().enumerate() {
            let mut command = Command::new(env!("CARGO_BIN_EXE_minispark"));
            command
                .args(["executor", "--driver", &driver.url()])
                .args(["--listen", "127.0.0.1:0", "--slots", "2"])
                .arg("--work-dir")
                .arg(work.path().join(dir))
                .args(["--id", &format!("exec-{i}")])
                .env(SECRET_ENV, &secret_text)
                .env("RUST_LOG", "minispark_executor=info,minispark_proto=info")
                .env("NO_COLOR", "1")
                .env_remove(FETCH_UNAVAILABLE_ENV)
                .env_remove(FETCH_NOT_FOUND_ENV)
                .env_remove(ORPHAN_ATTEMPT_ENV)
                .env_remove(FETCH_HANG_ENV)
                .env_remove(FETCH_DELAY_ENV)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            for (k, v) in env.iter() {
                command.env(k, v);
            }
            let mut child = command.spawn().expect("start an executor process");
            logs.push(collect_lines(child.stderr.take().unwrap()));
            procs.push(format!("exec-{i}"), child);
        }
        assert!(
            driver
                .cluster
                .wait_for_executors(executors.len(), Duration::from_secs(60))
                .await,
            "the executors did not register within 60 s"
        );
        Self {
            driver,
            logs,
            work,
            _procs: procs,
        }
    }

    /// Every executor's log lines that contain all of `needles`.
    fn lines(&self, needles: &[&str]) -> Vec<String> {
        self.logs
            .iter()
            .flat_map(|l| l.lock().unwrap().clone())
            .filter(|line| needles.iter().all(|n| line.contains(n)))
            .collect()
    }

    /// Waits at most `limit` for a log line with all of `needles`.
    async fn wait_for_line(&self, needles: &[&str], limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(line) = self.lines(needles).pop() {
                return line;
            }
            if Instant::now() > deadline {
                panic!(
                    "no executor logged a line with {needles:?} within {limit:?}; logs:\n{}",
                    self.lines(&[]).join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn session(&self, settings: &[(&str, &str)]) -> minispark::driver::job::JobSession {
        let settings = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.driver.session(&settings).expect("session")
    }
}

/// The number after `key` in a log line.
fn field(line: &str, key: &str) -> u32 {
    line.split(key)
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

/// The entries of `dir`, by name.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_attempts_of_a_map_task_race_and_only_one_output_is_committed() {
    // Attempt 0 of stage 0's map task 0 is answered as failed at once but
    // runs on, and waits 3 s before committing: the driver's attempt 1, on
    // the other executor (the failed one is excluded), writes into the same
    // work dir meanwhile.
    let orphan: &[(&str, &str)] = &[(ORPHAN_ATTEMPT_ENV, "0:0:0:3000")];
    let cluster = FaultyCluster::start(&[("shared", orphan), ("shared", orphan)]).await;
    let s = cluster.session(&[("minispark.shuffle.partitions", "4")]);
    let statement = minispark::driver::job::parse_script(SQL).unwrap().remove(0);
    // The job has run; its result (and so its files) is not read yet.
    let result = timed("a job whose map task races", s.execute_statement(statement))
        .await
        .unwrap();
    cluster
        .wait_for_line(
            &[
                "injected fault: this attempt runs on",
                "stage=0",
                "partition=0",
            ],
            Duration::from_secs(1),
        )
        .await;
    // Both attempts wrote; one committed, the other found that output and
    // removed its own. Usually the orphaned attempt 0 loses (it waits 3 s),
    // but on a loaded machine attempt 1 may be slower still: either way
    // exactly one commits, and the loser reports the winner's output.
    let lost = cluster
        .wait_for_line(
            &[
                "already committed by another attempt",
                "stage=0 map_partition=0 ",
            ],
            Duration::from_secs(60),
        )
        .await;
    let committed = cluster.lines(&["map output committed", "stage=0 map_partition=0 "]);
    assert_eq!(committed.len(), 1, "{committed:#?}");
    let winner = field(&committed[0], "map_partition=0 attempt=");
    assert_eq!(field(&lost, "committed_attempt="), winner, "{lost}");
    assert_ne!(field(&lost, "map_partition=0 attempt="), winner, "{lost}");
    assert!(winner == 0 || winner == 1, "{committed:#?}");

    // On disk: one committed output for map 0, no attempt's files left.
    let shared = cluster.work.path().join("shared");
    // Job directories (`spill/` is the executors' memory's).
    let jobs: Vec<String> = names(&shared)
        .into_iter()
        .filter(|n| n.starts_with("job-"))
        .collect();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let stage0 = shared.join(&jobs[0]).join("stage-0");
    let entries = names(&stage0);
    assert!(
        entries.iter().all(|e| !e.ends_with(".tmp")),
        "an attempt's files were left: {entries:?}"
    );
    assert_eq!(
        entries.iter().filter(|e| e.starts_with("map-0")).count(),
        1,
        "{entries:?}"
    );
    let index = ShuffleIndex::read_whole(&stage0.join("map-0")).unwrap();
    assert_eq!(index.attempt, winner);

    // And the answer is right.
    let mut stream = result.stream;
    let mut got = vec![];
    while let Some(batch) = timed("reading the result", stream.next()).await {
        got.push(batch.unwrap());
    }
    let oracle = minispark::planner::session::session_context(&Default::default()).unwrap();
    assert_result(
        &got,
        &oracle_sql(&oracle, SQL).await,
        "a job whose map task raced",
    );
    let counters = s.last_job_counters().expect("the job's counters");
    assert_eq!(counters.executors_lost, 0, "{counters}");
    assert!(counters.failed_attempts >= 1, "{counters}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_fetch_error_is_retried_without_evicting_the_executor() {
    // The first 3 fetches each executor serves answer Unavailable.
    let flaky: &[(&str, &str)] = &[(FETCH_UNAVAILABLE_ENV, "3")];
    let cluster = FaultyCluster::start(&[("a", flaky), ("b", flaky)]).await;
    let s = cluster.session(&[
        ("minispark.shuffle.partitions", "8"),
        ("minispark.shuffle.io.retryWait", "100ms"),
        ("minispark.adaptive.enabled", "false"),
    ]);
    let got = timed("a job with flaky fetches", crate::common::run_sql(&s, SQL))
        .await
        .unwrap();
    let oracle = minispark::planner::session::session_context(&Default::default()).unwrap();
    assert_result(
        &got,
        &oracle_sql(&oracle, SQL).await,
        "a job with flaky fetches",
    );
    // The faults happened, and the readers retried them.
    let injected = cluster.lines(&["injected fault: FetchPartition answers Unavailable"]);
    assert!(!injected.is_empty(), "no fault was injected");
    let retried = cluster.lines(&["shuffle fetch failed; retrying", "Unavailable"]);
    assert!(!retried.is_empty(), "no reader retried: {injected:#?}");
    // Nobody was evicted, and no task failed: the retries absorbed it all.
    let counters = s.last_job_counters().expect("the job's counters");
    assert_eq!(counters.executors_lost, 0, "{counters}");
    assert_eq!(counters.failed_attempts, 0, "{counters}");
    assert_eq!(counters.recomputed_map_outputs, 0, "{counters}");
    assert_eq!(cluster.driver.cluster.live_ids().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_error_that_outlives_its_retries_fails_the_task_not_the_executor() {
    // Every fetch answers Unavailable: a reduce task reading another
    // executor's block fails once its one retry fails too.
    let broken: &[(&str, &str)] = &[(FETCH_UNAVAILABLE_ENV, "1000000")];
    let cluster = FaultyCluster::start(&[("a", broken), ("b", broken)]).await;
    let s = cluster.session(&[
        ("minispark.shuffle.partitions", "8"),
        ("minispark.shuffle.io.maxRetries", "1"),
        ("minispark.shuffle.io.retryWait", "50ms"),
        ("minispark.task.maxFailures", "2"),
        ("minispark.adaptive.enabled", "false"),
    ]);
    let err = timed(
        "a job whose fetches all fail",
        crate::common::run_sql(&s, SQL),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("minispark.task.maxFailures = 2") && err.contains("Unavailable"),
        "{err}"
    );
    assert!(err.contains("after 2 tries"), "{err}");
    // The task failed; both executors live on, neither was evicted.
    let counters = s.last_job_counters().expect("the job's counters");
    assert_eq!(counters.executors_lost, 0, "{counters}");
    assert_eq!(counters.recomputed_map_outputs, 0, "{counters}");
    assert!(counters.failed_attempts >= 2, "{counters}");
    assert_eq!(cluster.driver.cluster.live_ids().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_its_executor_says_is_gone_is_recomputed_without_eviction() {
    // The first fetch of a stage-0 block each executor serves answers
    // NotFound: the reader's task reports that block missing, the driver
    // computes that map output again and reruns the task.
    let gone: &[(&str, &str)] = &[(FETCH_NOT_FOUND_ENV, "1")];
    let cluster = FaultyCluster::start(&[("a", gone), ("b", gone)]).await;
    let s = cluster.session(&[
        ("minispark.shuffle.partitions", "8"),
        ("minispark.adaptive.enabled", "false"),
    ]);
    let got = timed("a job with a gone block", crate::common::run_sql(&s, SQL))
        .await
        .unwrap();
    let oracle = minispark::planner::session::session_context(&Default::default()).unwrap();
    assert_result(
        &got,
        &oracle_sql(&oracle, SQL).await,
        "a job with a gone block",
    );
    let injected = cluster.lines(&["injected fault: FetchPartition answers NotFound"]);
    assert!(!injected.is_empty(), "no fault was injected");
    // Not retried: a gone block is final.
    assert!(
        cluster
            .lines(&["shuffle fetch failed; retrying"])
            .is_empty(),
        "a missing block was retried"
    );
    let counters = s.last_job_counters().expect("the job's counters");
    assert!(counters.recomputed_map_outputs >= 1, "{counters}");
    assert!(counters.stages_rebound >= 1, "{counters}");
    assert_eq!(counters.executors_lost, 0, "{counters}");
    assert_eq!(
        cluster.driver.cluster.live_ids().len(),
        2,
        "{}",
        cluster.lines(&[]).join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_fetch_times_out_and_is_retried() {
    // The first 2 fetches each executor serves never answer.
    let hang: &[(&str, &str)] = &[(FETCH_HANG_ENV, "2")];
    let cluster = FaultyCluster::start(&[("a", hang), ("b", hang)]).await;
    let s = cluster.session(&[
        ("minispark.shuffle.partitions", "8"),
        ("minispark.shuffle.io.connectionTimeout", "1s"),
        ("minispark.shuffle.io.retryWait", "100ms"),
        ("minispark.adaptive.enabled", "false"),
    ]);
    let start = Instant::now();
    let got = timed("a job with hung fetches", crate::common::run_sql(&s, SQL))
        .await
        .unwrap();
    let elapsed = start.elapsed();
    let oracle = minispark::planner::session::session_context(&Default::default()).unwrap();
    assert_result(
        &got,
        &oracle_sql(&oracle, SQL).await,
        "a job with hung fetches",
    );
    let injected = cluster.lines(&["injected fault: FetchPartition never answers"]);
    assert!(!injected.is_empty(), "no fault was injected");
    let retried = cluster.lines(&["shuffle fetch failed; retrying", "DeadlineExceeded"]);
    assert!(
        !retried.is_empty(),
        "no hung fetch timed out: {injected:#?}"
    );
    assert!(
        retried[0].contains("minispark.shuffle.io.connectionTimeout"),
        "{retried:#?}"
    );
    // Retried inside the tasks: none failed, nobody was evicted.
    let counters = s.last_job_counters().expect("the job's counters");
    assert_eq!(counters.failed_attempts, 0, "{counters}");
    assert_eq!(counters.executors_lost, 0, "{counters}");
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
}

/// Customers counted in one task: stage 0 scans orders, stage 1 (8 tasks)
/// aggregates per customer, stage 2 (1 task) reads stage 1's 8 blocks.
const ONE_READER: &str = "SELECT count(*) AS customers, sum(n) AS orders FROM \
    (SELECT o_custkey, count(*) AS n FROM tpch.sf0_01.orders GROUP BY o_custkey)";

/// Runs [`ONE_READER`] in `s`; returns the time of the one task of its
/// last stage and how many blocks it fetched from the other executor.
async fn one_reader_task(s: &minispark::driver::job::JobSession) -> (Duration, usize) {
    use futures::TryStreamExt;
    let plan = s
        .context()
        .sql(ONE_READER)
        .await
        .unwrap()
        .into_unoptimized_plan();
    let graph = timed("planning", s.plan_stages(plan)).await.unwrap();
    assert_eq!(graph.stages.len(), 3, "stages of {ONE_READER}");
    let mut read = vec![];
    minispark::planner::stages::collect_readers(graph.stages[2].writer().input(), &mut |r| {
        read.push(r.stage_id())
    });
    // The executors delay the blocks of stage 1 (set when they started).
    assert_eq!(read, vec![1], "the last stage reads stage 1");
    let run = timed("running", s.run_graph(&graph)).await.unwrap();
    let got: Vec<_> = timed("collecting", run.stream.try_collect()).await.unwrap();
    let oracle = minispark::planner::session::session_context(&Default::default()).unwrap();
    assert_result(&got, &oracle_sql(&oracle, ONE_READER).await, "one reader");
    let last = &run.metrics[2];
    assert_eq!(last.task_times.len(), 1, "the last stage's one task");
    let reader_executor = &last.map_outputs[0].1;
    let remote = run.metrics[1]
        .map_outputs
        .iter()
        .filter(|(_, e, blocks)| e != reader_executor && blocks.iter().any(|b| b.rows > 0))
        .count();
    (last.task_times[0], remote)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_overlap_within_max_size_in_flight() {
    // Every block of stage 1 is served 2 s late.
    const DELAY: Duration = Duration::from_secs(2);
    let late: &[(&str, &str)] = &[(FETCH_DELAY_ENV, "1:2000")];
    let cluster = FaultyCluster::start(&[("a", late), ("b", late)]).await;
    let settings = [
        ("minispark.shuffle.partitions", "8"),
        ("minispark.adaptive.enabled", "false"),
    ];
    // 48m in flight: the remote blocks are fetched at once.
    let (time, remote) = one_reader_task(&cluster.session(&settings)).await;
    assert!(
        remote >= 2,
        "the reader fetched {remote} remote blocks: nothing to overlap"
    );
    assert!(
        time < DELAY * 2,
        "{remote} late blocks fetched concurrently took {time:?}"
    );
    // 1 byte in flight: one block after the other.
    let serial = cluster.session(&[
        settings[0],
        settings[1],
        ("minispark.reducer.maxSizeInFlight", "1"),
    ]);
    let (time, remote) = one_reader_task(&serial).await;
    assert!(remote >= 1, "the reader fetched no remote block");
    assert!(
        time >= DELAY * remote as u32,
        "{remote} late blocks fetched one at a time took only {time:?}"
    );
}

/// Every `.tmp` directory under `dir`, by path.
fn tmp_dirs(dir: &Path) -> Vec<String> {
    let mut found = vec![];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.to_string_lossy().ends_with(".tmp") {
                found.push(path.to_string_lossy().into_owned());
            } else {
                found.extend(tmp_dirs(&path));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_attempt_removes_its_files_at_once() {
    // The one task of the last stage of ONE_READER waits 30 s for its
    // stage-1 blocks from the other executor, inside its attempt's
    // directory; minispark.task.timeout cancels it after 3 s (and any
    // slow first task of the other stages is retried: 50 failures allowed).
    let late: &[(&str, &str)] = &[(FETCH_DELAY_ENV, "1:30000")];
    let cluster = FaultyCluster::start(&[("a", late), ("b", late)]).await;
    let s = cluster.session(&[
        ("minispark.shuffle.partitions", "8"),
        ("minispark.adaptive.enabled", "false"),
        ("minispark.task.timeout", "3s"),
        ("minispark.task.maxFailures", "50"),
    ]);
    let job = tokio::spawn(async move { crate::common::run_sql(&s, ONE_READER).await });
    let work = cluster.work.path().to_path_buf();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Attempt 1 writes: attempt 0 was cancelled.
    loop {
        let dirs = tmp_dirs(&work);
        if dirs.iter().any(|d| d.contains("/stage-2/map-0.attempt-1-")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no second attempt started within 60 s: {dirs:?}"
        );
        if job.is_finished() {
            panic!("the job ended first: {:?}", job.await.unwrap().map(|_| ()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The cancelled attempt's directory is gone while the job still runs.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let dirs = tmp_dirs(&work);
        if !dirs.iter().any(|d| d.contains("/stage-2/map-0.attempt-0-")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cancelled attempt's files are still there: {dirs:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!job.is_finished(), "the job ended: not its own cleanup");
    cluster
        .wait_for_line(
            &["uncommitted attempt's files removed", "attempt-0-"],
            Duration::from_secs(5),
        )
        .await;
    // Every attempt would time out: the job is cancelled.
    job.abort();
    let _ = job.await;
}
