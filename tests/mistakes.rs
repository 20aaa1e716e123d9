//! The corpus of wrong job scripts (issue 13): every user mistake gets a
//! clear answer. Each file of `tests/mistakes/` is one wrong script, run
//! with `minispark submit` of the freshly built binary against one shared
//! standalone cluster (a driver and two executor processes), or, when its
//! header says `master: local`, on an embedded `local[1]` cluster of its
//! own. Each must exit non-zero within a bounded time (or, for the
//! documented warn-but-answer cases, exit 0) with every expected phrase on
//! stderr, no phrase that shows an internal error or asks to file a bug,
//! and no process left behind.
//!
//! Two scripts run at a time on the shared cluster (the `local` ones on a
//! thread of their own), each bounded by a timeout. The shared cluster
//! must stay alive through every script and still answer a good job after
//! every [`HEALTH_EVERY`] scripts and at the end; once it is stopped, no
//! process of the test may remain.
//!
//! A file starts with header lines, then the script:
//!
//! ```text
//! -- wrong: what is wrong with the script (exactly one)
//! -- expect: a phrase stderr must contain (any number)
//! -- exit: 0            (optional: the script must succeed; default: fail)
//! -- stdout: a phrase   (optional: stdout must contain it)
//! -- master: local      (optional: an embedded local[1] cluster)
//! -- encoding: bom crlf (optional: submitted with a byte-order mark and/or CRLF ends)
//! ```
//!
//! The header is not submitted: line numbers in expected phrases count from
//! the script's first line. `$DATA` in a script is a folder of prepared
//! files (good, partitioned, corrupt, empty Parquet; CSV; broken JSON);
//! `$OUT` is a fresh folder of the script's own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::processes::{Processes, collect_lines, output_bounded, wait_for_line};

const BIN: &str = env!("CARGO_BIN_EXE_minispark");

/// A cluster secret for every process of the test (the shared driver
/// requires it; each `local[1]` cluster makes its own).
const SECRET: &str = "mistakes-corpus-test-secret-0123456789";

/// The fewest scripts the corpus must hold (issue 13).
const MIN_CORPUS: usize = 150;

/// Scripts run at once against the shared cluster.
const WORKERS: usize = 2;

/// After this many scripts, the shared cluster must still answer a good job.
const HEALTH_EVERY: usize = 25;

/// A good job and what its answer must contain.
const HEALTH_JOB: &str = "SELECT count(*) AS nations FROM tpch.sf0_01.nation;\n";
const HEALTH_ANSWER: &str = "25";

/// What stderr must never show: internal errors, requests to report bugs
/// elsewhere, crashes, internal type names where a user word exists.
const FORBIDDEN: &[&str] = &[
    "Internal error",
    "internal error",
    "file a bug",
    "filing a bug",
    "DataFusion bug",
    "bug report",
    "issue tracker",
    "panicked",
    "stack overflow",
    "fatal runtime error",
    "ScalarValue",
    "LogicalPlan",
    "ExecutionPlan",
    "RecordBatch",
    "ParserError(",
    // DataFusion's label for an error of another process (the driver's).
    "External error",
];

/// One wrong script and what its answer must be.
#[derive(Debug, Clone)]
struct Case {
    name: String,
    wrong: String,
    expects: Vec<String>,
    succeeds: bool,
    stdout: Option<String>,
    local: bool,
    bom: bool,
    crlf: bool,
    script: String,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mistakes")
}

/// Reads every `NNN-name.sql` of the corpus, checking its header.
fn read_corpus() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/mistakes/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files.iter().map(|p| parse_case(p)).collect()
}

fn parse_case(path: &Path) -> Case {
    let name = path.file_stem().unwrap().to_string_lossy().to_string();
    let text = std::fs::read_to_string(path).unwrap();
    let mut case = Case {
        name: name.clone(),
        wrong: String::new(),
        expects: vec![],
        succeeds: false,
        stdout: None,
        local: false,
        bom: false,
        crlf: false,
        script: String::new(),
    };
    let mut body = vec![];
    let mut in_header = true;
    for line in text.lines() {
        let header = line
            .strip_prefix("-- ")
            .and_then(|l| l.split_once(": "))
            .filter(|(k, _)| {
                ["wrong", "expect", "exit", "stdout", "master", "encoding"].contains(k)
            });
        match header {
            Some((key, value)) if in_header => match key {
                "wrong" => {
                    assert!(case.wrong.is_empty(), "{name}: two `wrong:` lines");
                    case.wrong = value.to_string();
                }
                "expect" => case.expects.push(value.to_string()),
                "exit" => {
                    assert_eq!(value, "0", "{name}: `exit:` takes only 0");
                    case.succeeds = true;
                }
                "stdout" => case.stdout = Some(value.to_string()),
                "master" => {
                    assert_eq!(value, "local", "{name}: `master:` takes only local");
                    case.local = true;
                }
                "encoding" => {
                    for word in value.split_whitespace() {
                        match word {
                            "bom" => case.bom = true,
                            "crlf" => case.crlf = true,
                            other => panic!("{name}: unknown encoding {other}"),
                        }
                    }
                }
                _ => unreachable!(),
            },
            _ => {
                in_header = false;
                body.push(line);
            }
        }
    }
    assert!(!case.wrong.is_empty(), "{name}: no `-- wrong:` line");
    assert!(
        case.succeeds || !case.expects.is_empty(),
        "{name}: a failing script needs at least one `-- expect:` line"
    );
    case.script = body.join("\n") + "\n";
    case
}

/// The shared standalone cluster: a driver and two executors, killed on drop.
struct SharedCluster {
    url: String,
    procs: Processes,
}

fn start_cluster(dir: &Path) -> SharedCluster {
    let mut driver = Command::new(BIN)
        .args(["driver", "--listen", "127.0.0.1:0"])
        .env("MINISPARK_SECRET", SECRET)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the driver");
    let log = collect_lines(driver.stderr.take().unwrap());
    let mut procs = Processes::of("driver", driver);
    let prefix = "minispark driver listening on ";
    let url = wait_for_line(&log, Duration::from_secs(60), "the driver's URL", |l| {
        l.starts_with(prefix)
    })[prefix.len()..]
        .trim()
        .to_string();
    for i in 0..2 {
        procs.push(
            format!("executor {i}"),
            Command::new(BIN)
                .args(["executor", "--driver", &url, "--listen", "127.0.0.1:0"])
                .args(["--slots", "2", "--work-dir"])
                .arg(dir.join(format!("executor-{i}")))
                .env("MINISPARK_SECRET", SECRET)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start an executor"),
        );
    }
    SharedCluster { url, procs }
}

/// `minispark submit` of `script` (written to `dir`), bounded by `limit`.
fn submit(dir: &Path, script: &[u8], master: &str, limit: Duration) -> Output {
    let path = dir.join("job.sql");
    std::fs::write(&path, script).unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("submit")
        .arg(&path)
        .args(["--master", master, "--format", "csv"])
        .env("MINISPARK_SECRET", SECRET)
        .env("NO_COLOR", "1")
        .env("TMPDIR", dir)
        .current_dir(dir);
    output_bounded(&mut command, limit, &format!("submit {}", path.display()))
}

/// Writes the files `$DATA` stands for; the Parquet ones through the
/// cluster itself.
fn prepare_data(data: &Path, url: &str) {
    std::fs::create_dir_all(data.join("mixed")).unwrap();
    std::fs::create_dir_all(data.join("withempty")).unwrap();
    std::fs::write(data.join("nums.csv"), "n,s\n1,a\n2,b\nnot-a-number,c\n").unwrap();
    std::fs::write(data.join("corrupt.parquet"), "this is not parquet at all").unwrap();
    std::fs::write(data.join("empty.parquet"), "").unwrap();
    std::fs::write(data.join("afile.txt"), "a plain file\n").unwrap();
    std::fs::write(
        data.join("broken.json"),
        "{\"a\": 1}\n{\"a\": 2, broken\n{\"a\": 3}\n",
    )
    .unwrap();
    let setup = format!(
        "COPY (SELECT n_nationkey AS k, n_name AS name, n_regionkey AS r FROM tpch.sf0_01.nation) \
           TO '{d}/good/' STORED AS PARQUET;
         COPY (SELECT n_nationkey AS k, n_name AS name, n_regionkey AS r FROM tpch.sf0_01.nation) \
           TO '{d}/part/' STORED AS PARQUET PARTITIONED BY (r);",
        d = data.display()
    );
    let setup_dir = data.join("..").join("setup");
    std::fs::create_dir_all(&setup_dir).unwrap();
    // Executors may still be registering: the driver answers "no
    // executors" until one has; retry briefly.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = submit(&setup_dir, setup.as_bytes(), url, Duration::from_secs(120));
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the corpus's data could not be written: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let good = std::fs::read_dir(data.join("good"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("a Parquet file in good/");
    std::fs::copy(&good, data.join("mixed/a-good.parquet")).unwrap();
    std::fs::copy(
        data.join("corrupt.parquet"),
        data.join("mixed/b-bad.parquet"),
    )
    .unwrap();
    std::fs::copy(&good, data.join("withempty/a-good.parquet")).unwrap();
    std::fs::write(data.join("withempty/zero.parquet"), "").unwrap();
}

/// Processes whose command line mentions `dir` (a `local[1]` cluster's
/// executors work under its TMPDIR).
fn processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().to_string();
    let mut found = vec![];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let is_pid = entry
            .file_name()
            .to_string_lossy()
            .chars()
            .all(|c| c.is_ascii_digit());
        if !is_pid {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&needle) {
                found.push(format!(
                    "{}: {cmdline}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

/// Runs one case; returns what is wrong with its answer, if anything.
fn run_case(case: &Case, root: &Path, data: &Path, url: &str) -> Option<String> {
    let dir = root.join(&case.name);
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let mut script = case
        .script
        .replace("$DATA", &data.to_string_lossy())
        .replace("$OUT", &dir.join("out").to_string_lossy());
    if case.crlf {
        script = script.replace('\n', "\r\n");
    }
    let mut bytes = vec![];
    if case.bom {
        bytes.extend_from_slice("\u{feff}".as_bytes());
    }
    bytes.extend_from_slice(script.as_bytes());
    let (master, limit) = if case.local {
        // An embedded cluster starts its executor processes first; a sum
        // of 5 000 terms plans in time that grows with the square of its
        // terms (DataFusion names every sub-expression).
        ("local[1]", Duration::from_secs(600))
    } else {
        (url, Duration::from_secs(120))
    };
    let started = Instant::now();
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        submit(&dir, &bytes, master, limit)
    }));
    let out = match run {
        Ok(out) => out,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "the submit failed".into());
            return Some(msg);
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let mut problems = vec![];
    if out.status.success() != case.succeeds {
        problems.push(format!(
            "exit {:?}, expected {}",
            out.status.code(),
            if case.succeeds { "0" } else { "non-zero" }
        ));
    }
    for expect in &case.expects {
        if !stderr.contains(expect.as_str()) {
            problems.push(format!("stderr lacks {expect:?}"));
        }
    }
    if let Some(want) = &case.stdout
        && !stdout.contains(want.as_str())
    {
        problems.push(format!("stdout lacks {want:?}"));
    }
    for phrase in FORBIDDEN {
        if stderr.contains(phrase) {
            problems.push(format!("stderr shows {phrase:?}"));
        }
    }
    if case.local {
        // The embedded cluster's executors end with the client.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut left = processes_mentioning(&dir);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            left = processes_mentioning(&dir);
        }
        if !left.is_empty() {
            problems.push(format!("processes left behind: {left:?}"));
        }
    }
    if problems.is_empty() {
        return None;
    }
    let tail: String = {
        let chars: Vec<char> = stderr.chars().collect();
        chars[chars.len().saturating_sub(1500)..].iter().collect()
    };
    Some(format!(
        "{} ({}; {:.1}s)\n  wrong: {}\n  stderr (end): {}\n  stdout (start): {}",
        problems.join("; "),
        case.name,
        started.elapsed().as_secs_f64(),
        case.wrong,
        tail.trim(),
        stdout.chars().take(300).collect::<String>()
    ))
}

/// A good job on the shared cluster after `n` scripts; what is wrong with
/// its answer, if anything.
fn serves_a_good_job(root: &Path, n: usize, url: &str) -> Option<String> {
    let dir = root.join(format!("health-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        submit(&dir, HEALTH_JOB.as_bytes(), url, Duration::from_secs(120))
    }));
    let problem = match out {
        Err(_) => "its submit did not end in time".to_string(),
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            if out.status.success() && stdout.lines().any(|l| l.trim() == HEALTH_ANSWER) {
                return None;
            }
            format!(
                "exit {:?}, stdout {stdout:?}, stderr {:?}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            )
        }
    };
    Some(format!(
        "the shared cluster no longer serves a good job after {n} scripts: {problem}"
    ))
}

/// Every script of the corpus gets its answer. Set `MINISPARK_MISTAKES` to
/// a substring of file names to run only those.
#[test]
fn every_mistake_gets_a_clear_answer() {
    let all = read_corpus();
    assert!(
        all.len() >= MIN_CORPUS,
        "the corpus holds {} scripts; issue 13 asks for at least {MIN_CORPUS}",
        all.len()
    );
    let filter = std::env::var("MINISPARK_MISTAKES").unwrap_or_default();
    let cases: Vec<Case> = all
        .into_iter()
        .filter(|c| c.name.contains(&filter))
        .collect();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let mut cluster = start_cluster(root.path());
    prepare_data(&data, &cluster.url);
    let started = Instant::now();
    // Scripts with an embedded cluster of their own (the slowest: deep
    // input) run on a thread of their own, alongside WORKERS threads for
    // the shared cluster's, deep ones first so they overlap the rest.
    let (mut shared, mut own): (Vec<Case>, Vec<Case>) =
        cases.iter().cloned().partition(|c| !c.local);
    shared.sort_by_key(|c| !c.name.contains("deep"));
    shared.reverse();
    own.reverse();
    let shared = Mutex::new(shared);
    let own = Mutex::new(own);
    let failures = Mutex::new(Vec::<String>::new());
    let driver_deaths = Mutex::new(Vec::<String>::new());
    let done = Mutex::new(0usize);
    let procs = Mutex::new(&mut cluster.procs);
    let url = cluster.url.clone();
    let work = |queue: &Mutex<Vec<Case>>| {
        loop {
            let Some(case) = queue.lock().unwrap().pop() else {
                break;
            };
            if let Some(problem) = run_case(&case, root.path(), &data, &url) {
                failures.lock().unwrap().push(problem);
            }
            // The shared cluster must survive every mistake.
            let alive = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                procs.lock().unwrap().assert_alive()
            }));
            if alive.is_err() {
                driver_deaths.lock().unwrap().push(case.name.clone());
                break;
            }
            // ... and still serve good jobs.
            let n = {
                let mut done = done.lock().unwrap();
                *done += 1;
                *done
            };
            if n % HEALTH_EVERY == 0
                && let Some(problem) = serves_a_good_job(root.path(), n, &url)
            {
                failures.lock().unwrap().push(problem);
            }
        }
    };
    std::thread::scope(|scope| {
        scope.spawn(|| work(&own));
        for _ in 0..WORKERS {
            scope.spawn(|| work(&shared));
        }
    });
    let served = serves_a_good_job(root.path(), usize::MAX, &url);
    let mut failures = failures.into_inner().unwrap();
    failures.extend(served);
    let deaths = driver_deaths.into_inner().unwrap();
    // No process of the shared cluster outlives it: its executors' command
    // lines name their work dirs under `root`.
    drop(cluster);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left = processes_mentioning(root.path());
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        left = processes_mentioning(root.path());
    }
    assert!(
        deaths.is_empty(),
        "the shared cluster died after: {deaths:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {} wrong scripts got a wrong answer (in {:.0}s):\n\n{}",
        failures.len(),
        cases.len(),
        started.elapsed().as_secs_f64(),
        failures.join("\n\n")
    );
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
