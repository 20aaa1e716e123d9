//! The web UI over HTTP, against a real embedded cluster (executor
//! processes) after a skewed join and a failed job: every page and API
//! endpoint, the DAG with one node per stage, the stage page listing every
//! task, the histogram marking the skewed partition, hostile paths, and the
//! history server showing the same jobs from their event logs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use minispark::local::{LocalCluster, LocalClusterOptions};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{run_sql, session, timed};

/// One HTTP/1.1 request; (status, body). Bounded by a timeout.
pub async fn http(address: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(address)
            .await
            .expect("connect to the UI");
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut bytes = vec![];
        stream.read_to_end(&mut bytes).await.unwrap();
        bytes
    };
    let bytes = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within 30 s"));
    let text = String::from_utf8(bytes).expect("UTF-8 answer");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{path}: no header end in {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{path}: no status in {head}"));
    (status, body.to_string())
}

/// GET that must answer 200; the body.
pub async fn get_ok(address: SocketAddr, path: &str) -> String {
    let (status, body) = http(address, "GET", path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

pub async fn get_json(address: SocketAddr, path: &str) -> Value {
    let body = get_ok(address, path).await;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
}

/// An embedded cluster of two executor processes with its UI on a free
/// loopback port, writing event logs to `event_logs`.
pub async fn ui_cluster(event_logs: &std::path::Path) -> LocalCluster {
    let options = LocalClusterOptions {
        executors: 2,
        slots: 2,
        binary: PathBuf::from(env!("CARGO_BIN_EXE_minispark")),
        heartbeat_timeout: Duration::from_secs(3),
        in_process: false,
        memory: None,
        ui: Some("127.0.0.1:0".into()),
    };
    let mut cluster = timed("starting a cluster", LocalCluster::start(options))
        .await
        .expect("cluster starts");
    cluster.driver.default_settings.insert(
        "minispark.eventLog.dir".into(),
        event_logs.display().to_string(),
    );
    cluster
}

/// The skewed join: the events' shuffle has the hot title's partition
/// over twice the median.
pub const SKEWED_JOIN: &str = "SELECT t.title, count(*) FROM netflix.small.viewing_events v \
     JOIN netflix.small.titles t ON v.title_id = t.title_id GROUP BY t.title";

pub const SKEW_SETTINGS: [(&str, &str); 4] = [
    ("minispark.shuffle.partitions", "8"),
    ("minispark.sql.autoBroadcastJoinThreshold", "-1"),
    ("minispark.skew.skewedPartitionThresholdInBytes", "0"),
    ("minispark.skew.skewedPartitionFactor", "2"),
];

/// Runs the skewed join and a job that fails on the executors; returns
/// their ids (from the API).
pub async fn run_skewed_and_failed(
    cluster: &LocalCluster,
    address: SocketAddr,
) -> (String, String) {
    let s = session(cluster, &SKEW_SETTINGS);
    timed("skewed join", run_sql(&s, SKEWED_JOIN))
        .await
        .expect("the skewed join runs");
    let failing = session(cluster, &[("minispark.task.maxFailures", "2")]);
    let err = timed(
        "failing job",
        run_sql(
            &failing,
            "SELECT CAST('not a number ' || n_name AS INT) FROM tpch.sf0_01.nation",
        ),
    )
    .await
    .expect_err("the cast fails");
    // A bad cast fails every attempt the same way: the job fails at once.
    assert!(err.to_string().contains("not retried"), "{err}");
    let jobs = get_json(address, "/api/v1/jobs").await;
    let jobs = jobs.as_array().expect("a list of jobs");
    let id_of = |pred: &dyn Fn(&Value) -> bool| -> String {
        jobs.iter()
            .find(|j| pred(j))
            .unwrap_or_else(|| panic!("no such job in {jobs:?}"))["job_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let skewed = id_of(&|j| {
        j["state"] == "succeeded" && j["statement"].as_str().unwrap().contains("viewing_events")
    });
    let failed = id_of(&|j| j["state"] == "failed");
    (skewed, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_and_endpoint_after_a_skewed_join_and_a_failed_job() {
    let logs = tempfile::tempdir().unwrap();
    let cluster = ui_cluster(logs.path()).await;
    let address = cluster.driver.ui_address.expect("the UI runs");
    assert!(address.ip().is_loopback());
    let (skewed, failed) = run_skewed_and_failed(&cluster, address).await;

    // Jobs page: both jobs, linked, with their status.
    let jobs = get_ok(address, "/jobs").await;
    assert!(get_ok(address, "/").await.contains("Finished jobs (2)"));
    for (id, state) in [(&skewed, "succeeded"), (&failed, "failed")] {
        assert!(
            jobs.contains(&format!("<a href=\"/jobs/{id}\">{id}</a>")),
            "{jobs}"
        );
        assert!(jobs.contains(&format!("data-state=\"{state}\"")), "{jobs}");
    }

    for id in [&skewed, &failed] {
        let job = get_json(address, &format!("/api/v1/jobs/{id}")).await;
        let stages = job["stages"].as_array().unwrap();
        assert!(!stages.is_empty());
        // The DAG: one node per stage, each linking to its page; an edge
        // per input, named by its exchange.
        let page = get_ok(address, &format!("/jobs/{id}")).await;
        assert!(page.contains("<svg class=\"dag\""), "{page}");
        assert_eq!(
            page.matches("class=\"stage-node\"").count(),
            stages.len(),
            "{page}"
        );
        let edges: usize = stages
            .iter()
            .map(|s| s["inputs"].as_array().unwrap().len())
            .sum();
        assert_eq!(page.matches("<g class=\"edge\"").count(), edges, "{page}");
        let listed = get_json(address, &format!("/api/v1/jobs/{id}/stages")).await;
        assert_eq!(listed.as_array().unwrap().len(), stages.len());
        // Every stage page lists every task attempt the API knows.
        for n in 0..stages.len() {
            let tasks = get_json(address, &format!("/api/v1/jobs/{id}/stages/{n}/tasks")).await;
            let tasks = tasks.as_array().unwrap();
            let page = get_ok(address, &format!("/jobs/{id}/stages/{n}")).await;
            assert!(
                page.contains(&format!("<h1>Stage {n} of job {id}</h1>")),
                "{page}"
            );
            assert_eq!(
                page.matches("<tr class=\"task-row").count(),
                tasks.len(),
                "{page}"
            );
            for t in tasks {
                let p = t["partition"].as_u64().unwrap();
                assert!(page.contains(&format!("data-partition=\"{p}\"")));
            }
            let detail = get_json(address, &format!("/api/v1/jobs/{id}/stages/{n}")).await;
            assert_eq!(detail["tasks"].as_array().unwrap().len(), tasks.len());
        }
        let sql = get_ok(address, &format!("/jobs/{id}/sql")).await;
        assert!(sql.contains("class=\"stage-boundary\""), "{sql}");
    }

    // The skewed join: its graph's edges name the hash shuffle, every
    // stage succeeded with its tasks' metrics, and one stage's histogram
    // marks the hot title's partition.
    let job = get_json(address, &format!("/api/v1/jobs/{skewed}")).await;
    assert_eq!(job["state"], "succeeded");
    let page = get_ok(address, &format!("/jobs/{skewed}")).await;
    assert!(page.contains("hash shuffle \u{b7} "), "{page}");
    let sql = get_ok(address, &format!("/jobs/{skewed}/sql")).await;
    assert!(sql.contains("class=\"join-line\""), "{sql}");
    assert!(sql.contains("viewing_events"), "{sql}");
    let stages = job["stages"].as_array().unwrap();
    let skewed_stage = stages
        .iter()
        .find(|s| !s["skewed_partitions"].as_array().unwrap().is_empty())
        .unwrap_or_else(|| panic!("no stage with a skewed partition: {job}"));
    let n = skewed_stage["id"].as_u64().unwrap();
    let hot = &skewed_stage["hot_keys"][0];
    let hot_partition = hot["partition"].as_u64().expect("a hot key");
    assert!(
        hot["key"].as_str().unwrap().starts_with("title_id="),
        "{hot}"
    );
    let marked: Vec<u64> = skewed_stage["skewed_partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert!(marked.contains(&hot_partition), "{marked:?} {hot}");
    let page = get_ok(address, &format!("/jobs/{skewed}/stages/{n}")).await;
    assert!(page.contains("<svg class=\"histogram\""), "{page}");
    assert_eq!(page.matches("<rect class=\"bar").count(), 8, "{page}");
    for p in &marked {
        assert!(
            page.contains(&format!(
                "<rect class=\"bar skewed\" data-partition=\"{p}\""
            )),
            "partition {p} not marked: {page}"
        );
    }
    assert_eq!(
        page.matches("<rect class=\"bar skewed\"").count(),
        marked.len()
    );
    assert!(
        page.contains(&crate::web_ui::esc_html(hot["key"].as_str().unwrap())),
        "{page}"
    );
    assert!(page.contains("<table class=\"quantiles\""), "{page}");
    assert!(page.contains("<svg class=\"timeline\""), "{page}");
    let detail = get_json(address, &format!("/api/v1/jobs/{skewed}/stages/{n}")).await;
    let summary = detail["summary"].as_array().unwrap();
    assert_eq!(summary[0]["metric"], "duration");
    assert_eq!(summary[0]["quantiles"].as_array().unwrap().len(), 5);
    for t in detail["tasks"].as_array().unwrap() {
        assert_eq!(t["status"], "success", "{t}");
        assert!(t["metrics"]["rows_out"].as_u64().unwrap() > 0, "{t}");
    }

    // The failed job: its error, and its failed attempts on the stage page.
    let page = get_ok(address, &format!("/jobs/{failed}")).await;
    assert!(page.contains("id=\"job-error\""), "{page}");
    assert!(page.contains("not retried"), "{page}");
    let job = get_json(address, &format!("/api/v1/jobs/{failed}")).await;
    let failed_attempts: u64 = job["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tasks_failed"].as_u64().unwrap())
        .sum();
    assert!(failed_attempts >= 1, "{job}");

    // Executors: both alive, with heartbeats.
    let page = get_ok(address, "/executors").await;
    assert!(page.contains("exec-0") && page.contains("exec-1"), "{page}");
    let executors = get_json(address, "/api/v1/executors").await;
    let executors = executors.as_array().unwrap();
    assert_eq!(executors.len(), 2, "{executors:?}");
    for e in executors {
        assert_eq!(e["state"], "alive");
        assert!(e["since_heartbeat_ms"].as_u64().is_some(), "{e}");
        assert!(e["tasks_succeeded"].as_u64().unwrap() > 0, "{e}");
    }

    // Prometheus: the exposition parses, and its counters are the jobs'.
    let metrics = parse_openmetrics(&get_ok(address, "/metrics").await);
    let mut tasks = vec![];
    for id in [&skewed, &failed] {
        let job = get_json(address, &format!("/api/v1/jobs/{id}")).await;
        for n in 0..job["stages"].as_array().unwrap().len() {
            let list = get_json(address, &format!("/api/v1/jobs/{id}/stages/{n}/tasks")).await;
            tasks.extend(list.as_array().unwrap().iter().cloned());
        }
    }
    // Stages launched and not completed when their job failed.
    let failed_job = get_json(address, &format!("/api/v1/jobs/{failed}")).await;
    let stages_failed = failed_job["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["submitted_ms"].is_null() && s["completed_ms"].is_null())
        .count();
    assert!(stages_failed >= 1, "{failed_job}");
    let succeeded: Vec<&Value> = tasks.iter().filter(|t| t["status"] == "success").collect();
    let sum = |field: &str| -> f64 {
        succeeded
            .iter()
            .map(|t| t["metrics"][field].as_u64().unwrap() as f64)
            .sum()
    };
    for (name, want) in [
        ("minispark_jobs_started_total", 2.0),
        ("minispark_jobs_succeeded_total", 1.0),
        ("minispark_jobs_failed_total", 1.0),
        ("minispark_stages_failed_total", stages_failed as f64),
        ("minispark_tasks_started_total", tasks.len() as f64),
        ("minispark_tasks_succeeded_total", succeeded.len() as f64),
        (
            "minispark_tasks_failed_total",
            (tasks.len() - succeeded.len()) as f64,
        ),
        (
            "minispark_task_duration_seconds_count",
            succeeded.len() as f64,
        ),
        ("minispark_shuffle_written_bytes_total", sum("bytes_out")),
        ("minispark_shuffle_read_bytes_total", sum("bytes_in")),
        (
            "minispark_shuffle_fetched_remote_bytes_total",
            sum("bytes_remote"),
        ),
        ("minispark_spilled_bytes_total", sum("spilled_bytes")),
        ("minispark_executors_alive", 2.0),
        ("minispark_executors_lost_total", 0.0),
        ("minispark_fetch_failures_total", 0.0),
        ("minispark_recomputed_map_outputs_total", 0.0),
    ] {
        assert_eq!(metrics.get(name), Some(&want), "{name} in {metrics:?}");
    }
    assert!(metrics["minispark_shuffle_written_bytes_total"] > 0.0);

    // Hostile paths: 404 with a reason, never a crash; the server stays up.
    for path in [
        "/jobs/job-000000000000".to_string(),
        format!("/jobs/{skewed}/stages/99"),
        format!("/jobs/{skewed}/stages/-1"),
        format!("/jobs/{skewed}/stages/abc"),
        format!("/jobs/{skewed}/stages/184467440737095516160"),
        "/jobs/%3Cscript%3E".to_string(),
        "/nope".to_string(),
        "/jobs/../../etc/passwd".to_string(),
        format!("/jobs/{skewed}/stages/0/extra"),
        "/api/v1/jobs/x/stages".to_string(),
        format!("/{}", "a/".repeat(400)),
    ] {
        let (status, body) = http(address, "GET", &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            body.contains("no ") || body.contains("not"),
            "{path}: {body}"
        );
    }
    let (status, body) = http(address, "GET", "/api/v1/jobs/job-nope").await;
    assert_eq!(status, 404);
    let err: Value = serde_json::from_str(&body).unwrap();
    assert!(
        err["message"].as_str().unwrap().contains("no job job-nope"),
        "{body}"
    );
    let (status, body) = http(address, "GET", &format!("/jobs/{skewed}/stages/99")).await;
    assert_eq!(status, 404);
    assert!(
        body.contains(&format!("job {skewed} has no stage 99")),
        "{body}"
    );
    let (status, _) = http(address, "POST", "/jobs").await;
    assert_eq!(status, 405);
    get_ok(address, "/jobs").await;

    // The history server shows the same jobs from their event logs.
    let history = minispark::driver::ui::history::start(logs.path(), "127.0.0.1:0")
        .await
        .expect("history server starts");
    assert!(history.problems.is_empty(), "{:?}", history.problems);
    assert_eq!(history.jobs, 2);
    for id in [&skewed, &failed] {
        let live = get_json(address, &format!("/api/v1/jobs/{id}")).await;
        let old = get_json(history.address, &format!("/api/v1/jobs/{id}")).await;
        assert_eq!(live, old, "job {id}: the history differs from the live UI");
        for n in 0..live["stages"].as_array().unwrap().len() {
            let path = format!("/api/v1/jobs/{id}/stages/{n}/tasks");
            assert_eq!(
                get_json(address, &path).await,
                get_json(history.address, &path).await,
                "{path}"
            );
        }
        let page = get_ok(history.address, &format!("/jobs/{id}")).await;
        assert_eq!(
            page.matches("class=\"stage-node\"").count(),
            live["stages"].as_array().unwrap().len()
        );
    }
    let page = get_ok(history.address, &format!("/jobs/{skewed}/stages/{n}")).await;
    assert_eq!(
        page.matches("<rect class=\"bar skewed\"").count(),
        marked.len()
    );
    history.server.abort();

    // A truncated and a corrupt log: what can be read is shown, what cannot
    // is said.
    let broken = tempfile::tempdir().unwrap();
    let original = std::fs::read(logs.path().join(format!("{skewed}.jsonl"))).unwrap();
    // Cut inside a line two thirds in.
    let line_start = original[..original.len() * 2 / 3]
        .iter()
        .rposition(|b| *b == b'\n')
        .unwrap();
    let cut = &original[..line_start + 12];
    std::fs::write(broken.path().join(format!("{skewed}.jsonl")), cut).unwrap();
    std::fs::write(
        broken.path().join("garbage.jsonl"),
        "{\"event\":\"Nope\"}\n\u{0}\u{1}binary\n[1,2,3]\n",
    )
    .unwrap();
    let history = minispark::driver::ui::history::start(broken.path(), "127.0.0.1:0")
        .await
        .expect("the history server starts over broken logs");
    assert_eq!(history.jobs, 1);
    assert!(
        history.problems.iter().any(|p| p.contains("truncated")),
        "{:?}",
        history.problems
    );
    assert!(
        history
            .problems
            .iter()
            .any(|p| p.contains("garbage.jsonl: line 2 is not an event")),
        "{:?}",
        history.problems
    );
    assert!(
        history
            .problems
            .iter()
            .any(|p| p.contains("ends before the job did")),
        "{:?}",
        history.problems
    );
    let page = get_ok(history.address, "/jobs").await;
    assert!(page.contains("class=\"note\""), "{page}");
    assert!(page.contains("ends before the job did"), "{page}");
    get_ok(history.address, &format!("/jobs/{skewed}")).await;
    for n in 0..3 {
        let (status, _) = http(
            history.address,
            "GET",
            &format!("/jobs/{skewed}/stages/{n}"),
        )
        .await;
        assert!(status == 200 || status == 404);
    }
    history.server.abort();
}

/// Parses an OpenMetrics text exposition strictly: every sample belongs to
/// a family declared by a `# TYPE` line before it, every value is a number,
/// and it ends with `# EOF`. Returns each sample (name and labels) and value.
pub fn parse_openmetrics(text: &str) -> std::collections::HashMap<String, f64> {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "no # EOF at the end:\n{text}");
    let mut families = std::collections::HashSet::new();
    let mut samples = std::collections::HashMap::new();
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            families.insert(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        }
        let (sample, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|e| panic!("{line}: not a number ({e})"));
        let name = sample.split('{').next().unwrap();
        let family = ["_total", "_bucket", "_count", "_sum", "_created"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| families.contains(*f))
            .unwrap_or(name);
        assert!(families.contains(family), "{line}: no # TYPE for {family}");
        assert!(
            samples.insert(sample.to_string(), value).is_none(),
            "{sample} twice"
        );
    }
    samples
}

/// HTML escaping as the pages do it (for finding a key's text in a page).
pub fn esc_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
