//! The web UI in a real browser: headless Chromium (Debian's `chromium`
//! package, which `.ci/run` installs) loads the job page and the stage
//! pages of a skewed join and the test checks the DOM it rendered (one DAG
//! node per stage, the histogram's bars with the skewed partition marked,
//! the straggler marked in the task timeline), and that its screenshot is a
//! PNG. Without Chromium, or when it cannot start, the test fails and says
//! why; it is never skipped.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use minispark::executor::straggler_faults::STRAGGLER_ENV;

use crate::common::{run_sql, timed};
use crate::process_cluster::ProcessCluster;
use crate::web_ui::{SKEW_SETTINGS, SKEWED_JOIN, get_json};

/// How long one browser run may take.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// How long the straggler (attempt 0 of the join's hot partition) sleeps.
const STRAGGLER_SLEEP_MS: u64 = 3000;

/// The join stage of [`SKEWED_JOIN`]: after the two scans (stages 0 and 1).
const JOIN_STAGE: usize = 2;

/// The browser: `$MINISPARK_CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("MINISPARK_CHROMIUM") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("chromium"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "no `chromium` on the PATH: the browser test needs Debian's chromium package \
                 (.ci/run installs it: apt-get install chromium), or MINISPARK_CHROMIUM=/path"
            )
        })
}

/// A browser process and every process it started (its own process group):
/// all killed when dropped, also when the test panics.
struct Browser {
    child: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: Chromium's zygote, renderer and GPU processes too.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs headless Chromium with `args` then `url`, in a profile of its own
/// under `dir`; returns its stdout. Fails the test, with Chromium's stderr,
/// when it cannot start, fails or takes over [`BROWSER_TIMEOUT`].
fn run_browser(dir: &Path, args: &[String], url: &str) -> String {
    let binary = chromium();
    let profile = dir.join("profile");
    let mut command = Command::new(&binary);
    command
        .args([
            "--headless",
            // Tests may run as root, where Chromium's sandbox cannot start;
            // it only loads this test's own loopback pages.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let mut browser = Browser { child };
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = vec![];
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(browser.child.stdout.take().unwrap()));
    let stderr = drain(Box::new(browser.child.stderr.take().unwrap()));
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let status = loop {
        if let Some(status) = browser.child.try_wait().expect("waiting for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            drop(browser);
            let err = stderr.join().unwrap_or_default();
            panic!(
                "chromium did not finish within {BROWSER_TIMEOUT:?} loading {url}; stderr:\n{}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(browser);
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    assert!(
        status.success(),
        "chromium could not load {url}: {status:?}; stderr:\n{}",
        String::from_utf8_lossy(&err)
    );
    String::from_utf8(out).expect("the DOM is UTF-8")
}

/// The DOM of `url` after Chromium loaded and rendered it.
fn rendered_dom(dir: &Path, url: &str) -> String {
    let dom = run_browser(
        dir,
        &["--dump-dom".into(), "--virtual-time-budget=2000".into()],
        url,
    );
    assert!(dom.contains("<html"), "no document from {url}: {dom:?}");
    dom
}

/// A screenshot of `url` saved as `file`.
fn screenshot(dir: &Path, url: &str, file: &Path) {
    run_browser(
        dir,
        &[
            format!("--screenshot={}", file.display()),
            "--window-size=1280,2000".into(),
            "--hide-scrollbars".into(),
        ],
        url,
    );
}

/// `bytes` are a PNG image with a non-empty size; its (width, height).
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {:?}",
        &bytes[..bytes.len().min(16)]
    );
    assert_eq!(&bytes[12..16], b"IHDR", "a PNG starts with its IHDR chunk");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    let (w, h) = (be(16), be(20));
    assert!(w > 0 && h > 0, "an empty PNG: {w}x{h}");
    (w, h)
}

/// The shuffle partition of the most frequent title among 8 partitions
/// (Spark's `pmod(hash(key), n)`, as the shuffle places it), from
/// DataFusion alone in this process.
async fn hot_title_partition() -> u64 {
    let ctx = minispark::planner::session::session_context(&Default::default()).unwrap();
    let batches = ctx
        .sql(
            "SELECT CAST(pmod(hash(title_id), 8) AS BIGINT) AS p FROM netflix.small.viewing_events \
             GROUP BY title_id ORDER BY count(*) DESC LIMIT 1",
        )
        .await
        .expect("the hot title query plans")
        .collect()
        .await
        .expect("the hot title query runs");
    let col = crate::common::column::<arrow::datatypes::Int64Type>(
        &batches,
        "p",
        &arrow::datatypes::DataType::Int64,
    );
    col[0] as u64
}

/// The skewed join on a cluster whose join task for the hot title's
/// partition is a straggler, seen in Chromium: the job page's DAG, the
/// events' stage with its skewed partition marked in the histogram, and the
/// join stage's timeline with the straggler marked; screenshots are PNGs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_renders_the_dag_the_skewed_partition_and_the_straggler() {
    // Fail at once, not after the job, when there is no browser.
    let browser_dir = tempfile::tempdir().unwrap();
    chromium();

    let hot = hot_title_partition().await;
    let mut cluster =
        ProcessCluster::start_with_ui(Duration::from_secs(10), Some("127.0.0.1:0")).await;
    let straggler = format!("{JOIN_STAGE}:{hot}:{STRAGGLER_SLEEP_MS}");
    let ids = [
        cluster.spawn_executor(2, &[(STRAGGLER_ENV, &straggler)]),
        cluster.spawn_executor(2, &[(STRAGGLER_ENV, &straggler)]),
    ];
    cluster.wait_for_executors(&ids).await;
    let address: SocketAddr = cluster.driver.ui_address.expect("the UI runs");

    // Adaptive execution off: the skewed partition stays one task. Blocks
    // uncompressed, as an embedded cluster writes them: the hot title's
    // rows compress far better than the others', which would hide the skew
    // in the bytes.
    let mut settings = SKEW_SETTINGS.to_vec();
    settings.push(("minispark.adaptive.enabled", "false"));
    settings.push(("minispark.shuffle.compression", "none"));
    let session = cluster.session(&settings);
    timed("skewed join", run_sql(&session, SKEWED_JOIN))
        .await
        .expect("the skewed join runs");

    let jobs = get_json(address, "/api/v1/jobs").await;
    let job_id = jobs[0]["job_id"].as_str().expect("a job").to_string();
    let job = get_json(address, &format!("/api/v1/jobs/{job_id}")).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let stages = job["stages"].as_array().unwrap();
    assert_eq!(
        stages[JOIN_STAGE]["inputs"].as_array().map(Vec::len),
        Some(2),
        "stage {JOIN_STAGE} is no longer the join (the straggler is injected there): {job}"
    );
    let skewed_stage = stages
        .iter()
        .find(|s| !s["skewed_partitions"].as_array().unwrap().is_empty())
        .unwrap_or_else(|| panic!("no stage with a skewed partition: {job}"));
    let skewed_n = skewed_stage["id"].as_u64().unwrap();
    let marked: Vec<u64> = skewed_stage["skewed_partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert!(
        marked.contains(&hot),
        "the hot title's partition {hot} is not among the skewed {marked:?}"
    );

    // The job page: one DAG node per stage, each linking to its page.
    let url = format!("http://{address}/jobs/{job_id}");
    let dom = rendered_dom(browser_dir.path(), &url);
    assert!(dom.contains("<svg class=\"dag\""), "{dom}");
    assert_eq!(
        dom.matches("class=\"stage-node\"").count(),
        stages.len(),
        "{dom}"
    );
    for n in 0..stages.len() {
        assert!(
            dom.contains(&format!("href=\"/jobs/{job_id}/stages/{n}\"")),
            "no link to stage {n}: {dom}"
        );
    }
    let job_png = browser_dir.path().join("job.png");
    screenshot(browser_dir.path(), &url, &job_png);

    // The skewed stage: 8 bars, the hot partition's (and only the skewed
    // ones) marked and labelled.
    let url = format!("http://{address}/jobs/{job_id}/stages/{skewed_n}");
    let dom = rendered_dom(browser_dir.path(), &url);
    assert!(dom.contains("<svg class=\"histogram\""), "{dom}");
    assert_eq!(dom.matches("<rect class=\"bar").count(), 8, "{dom}");
    assert_eq!(
        dom.matches("<rect class=\"bar skewed\"").count(),
        marked.len(),
        "{dom}"
    );
    assert!(
        dom.contains(&format!(
            "<rect class=\"bar skewed\" data-partition=\"{hot}\""
        )),
        "partition {hot} not marked: {dom}"
    );
    assert!(dom.contains("class=\"skew-label\""), "{dom}");

    // The join stage: its timeline marks the hot partition's task as a
    // straggler, and marks exactly the stragglers the API names (on a busy
    // machine another task may take over twice the median too).
    let detail = get_json(
        address,
        &format!("/api/v1/jobs/{job_id}/stages/{JOIN_STAGE}"),
    )
    .await;
    let stragglers = detail["stragglers"].as_array().expect("stragglers").len();
    let url = format!("http://{address}/jobs/{job_id}/stages/{JOIN_STAGE}");
    let dom = rendered_dom(browser_dir.path(), &url);
    assert!(dom.contains("<svg class=\"timeline\""), "{dom}");
    assert!(stragglers >= 1, "{detail}");
    assert_eq!(
        dom.matches("<rect class=\"task straggler\"").count(),
        stragglers,
        "{dom}"
    );
    assert!(
        dom.contains(&format!(
            "<rect class=\"task straggler\" data-partition=\"{hot}\""
        )),
        "the straggler is not partition {hot}: {dom}"
    );
    assert!(
        dom.contains(&format!("straggler: partition {hot}")),
        "{dom}"
    );
    let stage_png = browser_dir.path().join("stage.png");
    screenshot(browser_dir.path(), &url, &stage_png);

    for png in [&job_png, &stage_png] {
        let bytes = std::fs::read(png)
            .unwrap_or_else(|e| panic!("chromium left no screenshot {}: {e}", png.display()));
        let (w, h) = png_size(&bytes);
        assert_eq!((w, h), (1280, 2000), "{}", png.display());
    }
    drop(cluster);
}
