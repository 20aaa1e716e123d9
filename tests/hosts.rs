//! A cluster across hosts: the driver and each executor in a Linux network
//! namespace of its own (a "host" with its own interfaces, addresses and
//! ports), joined by a bridge, started with the README's commands and
//! `0.0.0.0` listen addresses. Jobs submitted from this process cross the
//! bridge, and so does every shuffle: an executor that advertised
//! `0.0.0.0` would make every job fail.
//!
//! The hosts are a [`Lab`] (`network_lab.rs`). Needs root and iproute2's
//! `ip`; without them the tests fail and say so. A last test, without
//! namespaces, uses `localhost` for every address on one host.

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use datafusion::prelude::{SessionConfig, SessionContext};
use minispark_planner::session::session_context;

use crate::common::{
    Expected, TPCH_TABLES, assert_result, oracle_sql, skewed_joins, timed, tpch_dir,
};
use crate::network_lab::{BIN, Lab, SECRET, WAIT};
use crate::processes::{Processes, collect_lines, output_bounded, wait_for_line};

fn tpch_query(n: usize) -> String {
    let path = format!("{}/tests/tpch/queries/q{n}.sql", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Single-node DataFusion over the same TPC-H Parquet files.
async fn tpch_oracle(sql: &str) -> Expected {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(4));
    for t in TPCH_TABLES {
        ctx.register_parquet(t, tpch_dir().join(t).to_str().unwrap(), Default::default())
            .await
            .unwrap();
    }
    Expected::from_dataframe(ctx.sql(sql).await.unwrap())
        .await
        .unwrap()
}

/// Bytes that crossed between executors, summed over the stages of an
/// EXPLAIN ANALYZE.
fn network_bytes(plan: &str) -> u64 {
    plan.split("shuffled over network=")
        .skip(1)
        .map(|s| {
            s.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap_or("")
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("unreadable network bytes in {plan}"))
        })
        .sum()
}

const SHUFFLED: [(&str, &str); 3] = [
    ("minispark.shuffle.partitions", "4"),
    // Every join shuffled: nothing small enough to broadcast.
    ("minispark.sql.autoBroadcastJoinThreshold", "-1"),
    // Skewed partitions split by adaptive execution at any size.
    ("minispark.skew.skewedPartitionThresholdInBytes", "0"),
];

/// Driver and two executors on three hosts, all bound to 0.0.0.0, started
/// with the README's commands (one executor given the driver by IP, the
/// other by name): TPC-H joins and every skewed join type, their shuffles
/// crossing hosts, answer as single-node DataFusion does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_run_tpch_and_skewed_joins() {
    let mut lab = Lab::new(&["driver-host", "host-a", "host-b"]);
    let (driver, url) = lab.start_driver("driver-host", &[]).await;
    let a = lab.host("host-a").address.to_string();
    let b = lab.host("host-b").address.to_string();
    lab.start_executor(driver, "host-a", &url, &[], &[], &format!("{a}:"))
        .await;
    lab.start_executor(
        driver,
        "host-b",
        "http://driver-host:7077",
        &[],
        &[],
        &format!("{b}:"),
    )
    .await;

    let session = lab.session(&url, &SHUFFLED).await;
    for t in TPCH_TABLES {
        session
            .register_parquet(t, tpch_dir().join(t).to_str().unwrap())
            .await
            .unwrap();
    }
    for q in [3, 5] {
        let sql = tpch_query(q);
        let df = session.sql(&sql).await.unwrap();
        let (got, counters) = timed(&format!("q{q} across hosts"), df.collect_with_counters())
            .await
            .unwrap_or_else(|e| panic!("q{q} across hosts: {e}"));
        assert_result(
            &got,
            &tpch_oracle(&sql).await,
            format!("TPC-H q{q} on three hosts differs from DataFusion"),
        );
        assert!(!counters.had_failures(), "q{q}: {counters}");
    }
    // The shuffles really crossed hosts.
    let plan = timed(
        "EXPLAIN ANALYZE q5",
        session.sql(&tpch_query(5)).await.unwrap().explain_analyze(),
    )
    .await
    .unwrap();
    assert!(network_bytes(&plan) > 0, "no bytes crossed hosts:\n{plan}");

    let oracle = session_context(&Default::default()).unwrap();
    for join in skewed_joins() {
        // Salted by the hint for one join type, split by adaptive
        // execution for the others.
        let hint = if join.name == "INNER" {
            "/*+ SKEW('v', 'title_id') */"
        } else {
            ""
        };
        let sql = join.sql(hint);
        let df = session.sql(&sql).await.unwrap();
        let (got, counters) = timed(&format!("{} join across hosts", join.name), async {
            df.collect_with_counters().await
        })
        .await
        .unwrap_or_else(|e| panic!("{} join across hosts: {e}", join.name));
        assert_result(
            &got,
            &oracle_sql(&oracle, &join.sql("")).await,
            format!("the skewed {} join on three hosts", join.name),
        );
        assert!(!counters.had_failures(), "{}: {counters}", join.name);
        if join.name == "INNER" {
            assert!(counters.salted_sites >= 1, "{counters}");
        }
    }
    // The README's submit, from another host, with the driver by name:
    // the same rows as the DataFrame session's (itself checked above
    // against DataFusion).
    let sql = "SELECT c_mktsegment, count(*) AS n, sum(o_totalprice) AS total \
               FROM customer JOIN orders ON c_custkey = o_custkey GROUP BY 1 ORDER BY 1";
    let script = lab.work.path().join("job.sql");
    let ddl: String = ["customer", "orders"]
        .iter()
        .map(|t| {
            format!(
                "CREATE EXTERNAL TABLE {t} STORED AS PARQUET LOCATION '{}/';\n",
                tpch_dir().join(t).display()
            )
        })
        .collect();
    std::fs::write(
        &script,
        format!("SET minispark.sql.autoBroadcastJoinThreshold = -1;\n{ddl}{sql};\n"),
    )
    .unwrap();
    let out = lab.run(
        "host-a",
        &[
            "submit",
            script.to_str().unwrap(),
            "--master",
            "http://driver-host:7077",
            "--format",
            "csv",
        ],
    );
    assert!(
        out.status.success(),
        "submit across hosts: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let batches = timed("the same job by the session", async {
        session.sql(sql).await?.collect().await
    })
    .await
    .unwrap();
    let mut expected = vec![];
    minispark::output::write_result(
        &mut expected,
        &batches[0].schema(),
        &batches,
        minispark::output::Format::Csv,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);

    // No executor advertised an unspecified address.
    let registered: Vec<String> = lab
        .log(driver)
        .into_iter()
        .filter(|l| l.contains("executor registered"))
        .collect();
    assert_eq!(registered.len(), 2, "{registered:?}");
    assert!(
        registered.iter().all(|l| !l.contains("0.0.0.0")),
        "{registered:?}"
    );
}

/// A long job across hosts while a third executor joins (advertising itself
/// by host name) and another is killed: the answer stays right, the kill
/// landed (an executor lost, failed attempts), and the newcomer ran tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_joins_and_one_dies_mid_job_across_hosts() {
    let mut lab = Lab::new(&["driver-host", "host-a", "host-b", "host-c"]);
    let (driver, url) = lab
        .start_driver("driver-host", &["--heartbeat-timeout", "3"])
        .await;
    let a = lab.host("host-a").address.to_string();
    let b = lab.host("host-b").address.to_string();
    lab.start_executor(driver, "host-a", &url, &[], &[], &format!("{a}:"))
        .await;
    let exec_b = lab
        .start_executor(
            driver,
            "host-b",
            "http://driver-host:7077",
            &[],
            &[("RUST_LOG", "info")],
            &format!("{b}:"),
        )
        .await;

    let session = lab
        .session(
            &url,
            &[
                // Many short map tasks: host-b finishes some while most
                // are still to run.
                ("minispark.shuffle.partitions", "16"),
                ("minispark.sql.autoBroadcastJoinThreshold", "-1"),
            ],
        )
        .await;
    let sql = "SELECT o_orderpriority, l_returnflag, count(*), sum(l_quantity), avg(l_extendedprice) \
               FROM tpch.sf0_1.lineitem JOIN tpch.sf0_1.orders ON l_orderkey = o_orderkey \
               GROUP BY 1, 2";
    let started_before = lab
        .log(driver)
        .iter()
        .filter(|l| l.contains("job started"))
        .count();
    // The job runs in this task, next to what happens to the cluster (a
    // remote session's futures stay on their task).
    let done = std::sync::atomic::AtomicBool::new(false);
    let df = session.sql(sql).await.unwrap();
    let job = async {
        let r = timed(
            "a job surviving a killed executor across hosts",
            df.collect_with_counters(),
        )
        .await;
        done.store(true, Ordering::SeqCst);
        r
    };
    let chaos = async {
        let mut seen = 0;
        for _ in 0..=started_before {
            let (at, _) = lab
                .wait_for_line(driver, seen, "the job's start", |l| {
                    l.contains("job started")
                })
                .await;
            seen = at + 1;
        }
        // A newcomer on a fourth host, bound and advertised by name: the
        // driver and the other executor resolve host-c to reach it.
        let exec_c = lab
            .start_executor(
                driver,
                "host-c",
                "http://driver-host:7077",
                &["--listen", "host-c:0", "--advertise", "host-c"],
                &[("RUST_LOG", "info")],
                "host-c:",
            )
            .await;
        // host-b dies once it holds shuffle output of the job, which the
        // job then recomputes elsewhere.
        lab.wait_for_line(exec_b, 0, "a task finished on host-b", |l| {
            l.contains("task finished")
        })
        .await;
        assert!(
            !done.load(Ordering::SeqCst),
            "the job ended before host-c joined and host-b was killed: make it longer"
        );
        lab.kill(exec_b);
        exec_c
    };
    let (result, exec_c) = tokio::join!(job, chaos);
    let (got, counters) = result.unwrap_or_else(|e| panic!("the job across hosts failed: {e}"));
    let oracle = session_context(&Default::default()).unwrap();
    assert_result(
        &got,
        &oracle_sql(&oracle, sql).await,
        "a job across hosts with an executor joining and one killed",
    );
    // The kill landed while the job ran: the job saw it and recovered.
    assert!(
        counters.had_failures(),
        "the kill missed the job: {counters}"
    );
    assert!(counters.executors_lost >= 1, "{counters}");
    // Whether host-b's map outputs are recomputed or its running tasks only
    // retried depends on which stage it held work of when the kill landed
    // (both seen); either shows in the counters.
    assert!(
        counters.recomputed_map_outputs + counters.failed_attempts >= 1,
        "{counters}"
    );
    assert!(
        counters.task_attempts > counters.failed_attempts,
        "{counters}"
    );
    let ran = lab
        .log(exec_c)
        .iter()
        .filter(|l| l.contains("task finished"))
        .count();
    assert!(
        ran >= 1,
        "host-c joined but ran no task: {:?}",
        lab.log(exec_c)
    );
    let lost = lab.log(driver).join("\n");
    assert!(lost.contains("executor lost"), "{lost}");
    // The timeline, shown with --nocapture.
    for line in lab.log(driver) {
        if ["registered", "job started", "lost", "job complete"]
            .iter()
            .any(|w| line.contains(w))
        {
            println!("{line}");
        }
    }
    println!("{counters}; host-c ran {ran} tasks");

    // The cluster of host-a and host-c (by name) serves the next job.
    let skewed = &skewed_joins()[0];
    let df = session.sql(&skewed.sql("")).await.unwrap();
    let (got, counters) = timed("a skewed join after the kill", df.collect_with_counters())
        .await
        .unwrap();
    assert_result(
        &got,
        &oracle_sql(&oracle, &skewed.sql("")).await,
        "a skewed join on host-a and host-c",
    );
    assert_eq!(counters.executors_lost, 0, "{counters}");
}

/// Host names on one host, no namespaces: a driver bound to 0.0.0.0 never
/// prints 0.0.0.0, and `localhost` works for `--listen`, `--driver` and
/// `--master`.
#[test]
fn localhost_by_name_and_a_driver_on_every_interface() {
    let dir = tempfile::tempdir().unwrap();
    let mut procs = Processes::default();
    // Bound to every interface, port 0: the URL names a real address.
    let (url, _) = start_driver(&mut procs, &["--listen", "0.0.0.0:0"]);
    let host = url
        .strip_prefix("http://")
        .and_then(|a| a.rsplit_once(':'))
        .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
        .unwrap_or_else(|| panic!("not a URL: {url}"));
    let ip: std::net::IpAddr = host.parse().unwrap_or_else(|_| panic!("{url}"));
    assert!(!ip.is_unspecified(), "{url}");
    assert!(!url.ends_with(":0"), "{url}");

    let (url, log) = start_driver(&mut procs, &["--listen", "localhost:0"]);
    let port = url.rsplit(':').next().unwrap().to_string();
    let by_name = format!("http://localhost:{port}");
    let work = dir.path().join("e");
    procs.push(
        "executor",
        Command::new(BIN)
            .env("MINISPARK_SECRET", SECRET)
            .args(["executor", "--driver", &by_name, "--listen", "localhost:0"])
            .args(["--slots", "2", "--work-dir"])
            .arg(&work)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_line(&log, WAIT, "the executor's registration", |l| {
        l.contains("executor registered")
    });
    let script = dir.path().join("q.sql");
    std::fs::write(
        &script,
        "SELECT n_regionkey, count(*) FROM tpch.sf0_01.nation GROUP BY 1 ORDER BY 1",
    )
    .unwrap();
    let out = output_bounded(
        Command::new(BIN)
            .env("MINISPARK_SECRET", SECRET)
            .args(["submit", script.to_str().unwrap(), "--master", &by_name])
            .args(["--format", "csv"]),
        WAIT,
        &format!("submit to {by_name}"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Five regions of five nations each.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "n_regionkey,count(*)\n0,5\n1,5\n2,5\n3,5\n4,5\n"
    );
}

/// Starts a driver on this host; returns the URL it prints and its log so
/// far and to come.
fn start_driver(procs: &mut Processes, args: &[&str]) -> (String, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(BIN)
        .env("MINISPARK_SECRET", SECRET)
        .arg("driver")
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = collect_lines(child.stderr.take().unwrap());
    procs.push(format!("driver {args:?}"), child);
    let prefix = "minispark driver listening on ";
    let line = wait_for_line(&log, WAIT, "the driver's URL", |l| l.starts_with(prefix));
    (line[prefix.len()..].trim().to_string(), log)
}
