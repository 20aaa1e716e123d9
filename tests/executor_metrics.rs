//! Each executor's Prometheus `/metrics` (`minispark executor
//! --metrics-port 0`), after a skewed join: the exposition parses, and its
//! counters are the job's as the driver saw them (tasks per executor, their
//! durations, bytes written and spilled, shuffle bytes served to other
//! executors and to the driver's result reader).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::common::{run_sql, timed};
use crate::process_cluster::ProcessCluster;
use crate::processes::{collect_lines, wait_for_line};
use crate::web_ui::{SKEW_SETTINGS, SKEWED_JOIN, get_json, get_ok, http, parse_openmetrics};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_metrics_match_the_jobs_tasks() {
    let mut cluster =
        ProcessCluster::start_with_ui(Duration::from_secs(10), Some("127.0.0.1:0")).await;
    let ui = cluster.driver.ui_address.expect("the UI runs");
    let mut metrics_at: HashMap<String, SocketAddr> = HashMap::new();
    let mut ids = vec![];
    for _ in 0..2 {
        let id = cluster.spawn_executor_with(2, &[], &["--metrics-port", "0"], Stdio::piped());
        let lines = collect_lines(cluster.take_stderr(&id).expect("a piped stderr"));
        let line = wait_for_line(&lines, Duration::from_secs(60), "executor metrics", |l| {
            l.contains(" metrics at http://")
        });
        assert!(
            line.starts_with(&format!("minispark executor {id} metrics at http://")),
            "{line}"
        );
        let address = line
            .rsplit_once("http://")
            .and_then(|(_, rest)| rest.strip_suffix("/metrics"))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        metrics_at.insert(id.clone(), address);
        ids.push(id);
    }
    cluster.wait_for_executors(&ids).await;

    // Before any job: every counter is there, at zero.
    for address in metrics_at.values() {
        let m = parse_openmetrics(&get_ok(*address, "/metrics").await);
        assert_eq!(
            m.get("minispark_executor_tasks_started_total"),
            Some(&0.0),
            "{m:?}"
        );
        let (status, _) = http(*address, "GET", "/other").await;
        assert_eq!(status, 404);
    }

    let session = cluster.session(&SKEW_SETTINGS);
    timed("skewed join", run_sql(&session, SKEWED_JOIN))
        .await
        .expect("the skewed join runs");
    let jobs = get_json(ui, "/api/v1/jobs").await;
    let job_id = jobs[0]["job_id"].as_str().unwrap().to_string();
    let job = get_json(ui, &format!("/api/v1/jobs/{job_id}")).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let stages = job["stages"].as_array().unwrap();
    let mut tasks: Vec<Value> = vec![];
    for n in 0..stages.len() {
        let list = get_json(ui, &format!("/api/v1/jobs/{job_id}/stages/{n}/tasks")).await;
        for mut t in list.as_array().unwrap().iter().cloned() {
            t["stage"] = Value::from(n);
            tasks.push(t);
        }
    }
    let final_stage = stages.len() - 1;
    assert_eq!(stages[final_stage]["exchange"], "result", "{job}");

    let mut served_total = 0.0;
    for (id, address) in &metrics_at {
        let m = parse_openmetrics(&get_ok(*address, "/metrics").await);
        let mine: Vec<&Value> = tasks.iter().filter(|t| t["executor_id"] == *id).collect();
        let ok: Vec<&&Value> = mine.iter().filter(|t| t["status"] == "success").collect();
        assert!(!ok.is_empty(), "executor {id} ran no task: {tasks:?}");
        let sum = |field: &str| -> f64 {
            ok.iter()
                .map(|t| t["metrics"][field].as_u64().unwrap() as f64)
                .sum()
        };
        for (name, want) in [
            ("minispark_executor_tasks_started_total", mine.len() as f64),
            ("minispark_executor_tasks_succeeded_total", ok.len() as f64),
            ("minispark_executor_tasks_failed_total", 0.0),
            ("minispark_executor_tasks_running", 0.0),
            (
                "minispark_executor_task_duration_seconds_count",
                ok.len() as f64,
            ),
            (
                "minispark_executor_shuffle_written_bytes_total",
                sum("bytes_out"),
            ),
            (
                "minispark_executor_spilled_bytes_total",
                sum("spilled_bytes"),
            ),
            ("minispark_executor_fetch_failures_total", 0.0),
        ] {
            assert_eq!(m.get(name), Some(&want), "executor {id}: {name} in {m:?}");
        }
        let duration_sum = m["minispark_executor_task_duration_seconds_sum"];
        let driver_sum: f64 = ok
            .iter()
            .map(|t| t["metrics"]["duration_ms"].as_f64().unwrap() / 1000.0)
            .sum();
        assert!(
            (duration_sum - driver_sum).abs() < 1e-3,
            "executor {id}: task time {duration_sum} s here, {driver_sum} s at the driver"
        );
        served_total += m["minispark_executor_shuffle_served_bytes_total"];
    }
    // Every byte served went to another executor's reduce task (what the
    // driver counts as fetched remotely) or to the driver, which reads the
    // result stage's blocks.
    let remote: f64 = tasks
        .iter()
        .filter(|t| t["status"] == "success")
        .map(|t| t["metrics"]["bytes_remote"].as_u64().unwrap() as f64)
        .sum();
    let results: f64 = tasks
        .iter()
        .filter(|t| t["status"] == "success" && t["stage"] == final_stage)
        .map(|t| t["metrics"]["bytes_out"].as_u64().unwrap() as f64)
        .sum();
    assert!(remote > 0.0 && results > 0.0, "{tasks:?}");
    assert_eq!(
        served_total,
        remote + results,
        "served vs fetched remotely {remote} + results {results}"
    );
}
