//! Executors outlive their driver: a standalone driver process SIGKILLed and
//! started again on the same port gets its executor back (it registers
//! again by itself), and the next job's answer is right. And an executor
//! starting on a work dir a killed one left job folders in removes them.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minispark::proto::Security;
use minispark::proto::auth::{SECRET_ENV, Secret};

use crate::common::{assert_result, oracle_sql, timed};
use crate::processes::{Processes, wait_bounded, wait_for_line};

const BIN: &str = env!("CARGO_BIN_EXE_minispark");
const SECRET: &str = "driver-restart-test-secret-0123456789";
const START: Duration = Duration::from_secs(60);

/// Starts `minispark args...` with the secret; its stderr lines are
/// collected (and the pipe drained) for the life of the process.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(BIN)
        .args(args)
        .env(SECRET_ENV, SECRET)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start minispark");
    let stderr = child.stderr.take().unwrap();
    let lines = Arc::new(Mutex::new(vec![]));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    (child, lines)
}

/// A driver process on `listen`; returns it and its URL.
fn start_driver(listen: &str) -> (Child, String) {
    let (child, lines) = spawn(
        &["driver", "--listen", listen, "--heartbeat-timeout", "3"],
        &[],
    );
    let line = wait_for_line(&lines, START, "driver start", |l| {
        l.contains("minispark driver listening on ")
    });
    let url = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    (child, url)
}

/// The lines of `lines` containing `needle`.
fn count(lines: &Mutex<Vec<String>>, needle: &str) -> usize {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

async fn answer(url: &str, sql: &str) -> Vec<arrow::array::RecordBatch> {
    let session = timed(
        "connecting",
        minispark::Session::builder()
            .master(url)
            .security(Security::with_secret(
                Secret::new(SECRET.as_bytes(), "a test").unwrap(),
            ))
            .config("minispark.shuffle.partitions", "3")
            .build(),
    )
    .await
    .expect("session connects");
    let df = timed("query", session.sql(sql)).await.unwrap();
    timed("collect", df.collect()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_register_again_after_a_driver_restart() {
    let work = tempfile::tempdir().unwrap();
    // What a killed executor left behind: a job folder (removed), and
    // folders that are not job folders (kept).
    let stale = work.path().join("job-0123456789ab");
    std::fs::create_dir_all(stale.join("stage-0")).unwrap();
    std::fs::write(stale.join("stage-0/map-0-reduce-0.arrow"), b"stale").unwrap();
    std::fs::create_dir_all(work.path().join("job-not-an-id")).unwrap();

    let (driver, url) = start_driver("127.0.0.1:0");
    let port = url.rsplit(':').next().unwrap().to_string();
    let mut procs = Processes::of("driver", driver);
    let (executor, log) = spawn(
        &[
            "executor",
            "--driver",
            &url,
            "--listen",
            "127.0.0.1:0",
            "--slots",
            "2",
            "--work-dir",
            work.path().to_str().unwrap(),
            "--id",
            "exec-survivor",
        ],
        &[("RUST_LOG", "minispark_executor=info")],
    );
    procs.push("executor", executor);
    wait_for_line(&log, START, "executor registration", |l| {
        l.contains("registered with driver")
    });
    assert!(!stale.exists(), "the stale job folder is still there");
    assert!(work.path().join("job-not-an-id").exists());
    wait_for_line(&log, START, "stale folder removal logged", |l| {
        l.contains("removed job directories left by a previous executor")
    });

    let sql = "SELECT n_regionkey, count(*) AS n, sum(n_nationkey) AS s \
               FROM tpch.sf0_01.nation GROUP BY n_regionkey";
    let oracle = minispark::planner::session::session_context(&Default::default()).unwrap();
    let expected = oracle_sql(&oracle, sql).await;
    assert_result(&answer(&url, sql).await, &expected, "before the restart");

    // The driver dies (SIGKILL: no goodbye) and stays away long enough for
    // several heartbeats to fail.
    let (_, driver) = &mut procs.0[0];
    driver.kill().unwrap();
    driver.wait().unwrap();
    wait_for_line(&log, START, "heartbeat failure logged", |l| {
        l.contains("heartbeat failed")
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        matches!(procs.0[1].1.try_wait(), Ok(None)),
        "the executor exited without its driver; its log:\n{}",
        log.lock().unwrap().join("\n")
    );

    // A new driver process on the same port: the executor comes back by
    // itself, and the next job is right.
    let registrations = count(&log, "registered with driver");
    let (driver, url_again) = start_driver(&format!("127.0.0.1:{port}"));
    procs.0[0].1 = driver;
    assert_eq!(url_again, url);
    let deadline = std::time::Instant::now() + START;
    while count(&log, "registered with driver") == registrations {
        assert!(
            std::time::Instant::now() < deadline,
            "the executor did not register with the new driver; its log:\n{}",
            log.lock().unwrap().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_result(&answer(&url, sql).await, &expected, "after the restart");
    procs.assert_alive();
}

/// An executor does wait for its driver only so long: silent past
/// `--driver-timeout`, the driver is gone for good and the executor exits
/// saying so; one whose driver never answered gives up the same way.
#[test]
fn an_executor_gives_up_on_a_driver_silent_past_its_timeout() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_str().unwrap();
    let (driver, url) = start_driver("127.0.0.1:0");
    let mut procs = Processes::of("driver", driver);
    let executor_args = |url: &str| {
        [
            "executor",
            "--driver",
            url,
            "--listen",
            "127.0.0.1:0",
            "--work-dir",
            dir,
            "--driver-timeout",
            "2",
        ]
        .map(String::from)
    };
    let args = executor_args(&url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (executor, log) = spawn(&args, &[("RUST_LOG", "minispark_executor=info")]);
    procs.push("executor", executor);
    wait_for_line(&log, START, "executor registration", |l| {
        l.contains("registered with driver")
    });
    let (_, driver) = &mut procs.0[0];
    driver.kill().unwrap();
    driver.wait().unwrap();
    let status = wait_bounded(&mut procs.0[1].1, START, "the executor without its driver");
    assert!(!status.success());
    wait_for_line(&log, START, "the executor's last words", |l| {
        l.contains("has not answered for") && l.contains(" stops: ")
    });

    // A driver that never answers: nobody listens on the port.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let args = executor_args(&nobody);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (executor, log) = spawn(&args, &[]);
    procs.push("executor without a driver", executor);
    let status = wait_bounded(&mut procs.0[2].1, START, "the executor with no driver");
    assert!(!status.success());
    wait_for_line(&log, START, "the executor's error", |l| {
        l.contains(&format!("cannot reach the driver at {nobody}"))
    });
}
