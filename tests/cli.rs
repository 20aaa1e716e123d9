//! The `minispark` command line, end to end: output formats, EXPLAIN
//! ANALYZE, COPY ... PARTITIONED BY, and a standalone cluster started by hand.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::processes::{Processes, collect_lines, output_bounded, wait_for_line};

const BIN: &str = env!("CARGO_BIN_EXE_minispark");

/// Runs the CLI with a timeout.
fn minispark(args: &[&str]) -> Output {
    minispark_with(args, |_| {})
}

/// Runs the CLI with a timeout, its command adjusted by `setup` (its
/// environment, say); stdout and stderr are pipes.
fn minispark_with(args: &[&str], setup: impl FnOnce(&mut Command)) -> Output {
    let mut command = Command::new(BIN);
    setup(&mut command);
    output_bounded(
        command.args(args),
        Duration::from_secs(300),
        &format!("minispark {args:?}"),
    )
}

fn script(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn formats_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        &dir,
        "q.sql",
        "-- comment\nSELECT n_regionkey AS r, count(*) AS c FROM tpch.sf0_01.nation /* block */ GROUP BY 1 ORDER BY 1;\nSELECT 1 AS one;",
    );
    let csv = stdout_ok(&minispark(&[
        "submit",
        &s,
        "--master",
        "local[1]",
        "--format",
        "csv",
        "--conf",
        "minispark.shuffle.partitions=2",
    ]));
    assert_eq!(csv, "r,c\n0,5\n1,5\n2,5\n3,5\n4,5\none\n1\n");
    let json = stdout_ok(&minispark(&[
        "submit", &s, "--master", "local[1]", "--format", "json",
    ]));
    assert!(json.starts_with("{\"r\":0,\"c\":5}\n"), "{json}");
    assert!(json.ends_with("{\"one\":1}\n"), "{json}");
    let array = stdout_ok(&minispark(&[
        "submit",
        &s,
        "--master",
        "local[1]",
        "--format",
        "json-array",
    ]));
    assert!(
        array.starts_with("[{\"r\":0,\"c\":5},{\"r\":1,\"c\":5}"),
        "{array}"
    );
    assert!(array.ends_with("}]\n[{\"one\":1}]\n"), "{array}");
    let bad = minispark(&["submit", &s, "--conf", "minispark.shuffle.partitions=many"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("minispark.shuffle.partitions"));
}

#[test]
fn explain_and_explain_analyze() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        &dir,
        "q.sql",
        "SET minispark.shuffle.partitions = 3;
         EXPLAIN SELECT o_orderpriority, count(*) FROM tpch.sf0_01.orders GROUP BY 1;
         EXPLAIN ANALYZE SELECT o_orderpriority, count(*) FROM tpch.sf0_01.orders GROUP BY 1;",
    );
    let out = stdout_ok(&minispark(&["submit", &s, "--master", "local[2]"]));
    assert!(out.contains("Stage 0 (3 tasks; reads: scans; output: hash shuffle on [o_orderpriority@0] into 3 partitions)"), "{out}");
    assert!(
        out.contains("ShuffleReaderExec: stage=0, kind=hash"),
        "{out}"
    );
    // EXPLAIN ANALYZE: measured rows, bytes and task times per stage.
    assert!(out.contains("metrics: rows in=15000 out="), "{out}");
    assert!(out.contains("task time min="), "{out}");
    assert!(out.contains("Result: 5 rows"), "{out}");
}

#[test]
fn copy_partitioned_by_writes_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("orders_by_status");
    let s = script(
        &dir,
        "copy.sql",
        &format!(
            "COPY (SELECT o_orderkey, o_totalprice, o_orderstatus FROM tpch.sf0_01.orders) TO '{}' STORED AS PARQUET PARTITIONED BY (o_orderstatus);
             CREATE EXTERNAL TABLE back STORED AS PARQUET LOCATION '{}/';
             SELECT count(*) AS n FROM back;",
            out_dir.display(),
            out_dir.display()
        ),
    );
    let out = stdout_ok(&minispark(&[
        "submit", &s, "--master", "local[2]", "--format", "csv",
    ]));
    assert!(out.ends_with("n\n15000\n"), "{out}");
    let mut parts: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    parts.sort();
    assert_eq!(
        parts,
        vec!["o_orderstatus=F", "o_orderstatus=O", "o_orderstatus=P"]
    );
}

/// `minispark driver` and `minispark executor` started by hand, and a job
/// submitted with `--master http://...`.
#[test]
fn standalone_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let mut driver = Command::new(BIN)
        .args(["driver", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let log = collect_lines(driver.stderr.take().unwrap());
    let mut procs = Processes::default();
    procs.push("driver", driver);
    let prefix = "minispark driver listening on ";
    let url = wait_for_line(&log, Duration::from_secs(60), "the driver's URL", |l| {
        l.starts_with(prefix)
    })[prefix.len()..]
        .trim()
        .to_string();
    for i in 0..2 {
        let work = dir.path().join(format!("e{i}"));
        procs.push(
            format!("executor {i}"),
            Command::new(BIN)
                .args([
                    "executor",
                    "--driver",
                    &url,
                    "--listen",
                    "127.0.0.1:0",
                    "--slots",
                    "2",
                    "--work-dir",
                ])
                .arg(&work)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    let s = script(
        &dir,
        "q.sql",
        "SET minispark.shuffle.partitions = 4;
         SELECT c_mktsegment, count(*) AS n FROM tpch.sf0_01.customer GROUP BY 1 ORDER BY 1;",
    );
    // Executors may still be registering: the driver answers "no executors"
    // until one has; retry briefly.
    let deadline = Instant::now() + Duration::from_secs(60);
    let out = loop {
        let out = minispark(&["submit", &s, "--master", &url, "--format", "csv"]);
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let text = stdout_ok(&out);
    // Same answer as the embedded cluster (itself checked against DataFusion
    // in the TPC-H tests): five segments, 1500 customers in all.
    let local = stdout_ok(&minispark(&[
        "submit", &s, "--master", "local[1]", "--format", "csv",
    ]));
    assert_eq!(text, local);
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), 5, "{text}");
    let total: u64 = lines
        .iter()
        .map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 1500);
    // A bad job over the network: clear error, non-zero exit, driver still serves.
    let bad = script(&dir, "bad.sql", "SELECT nope FROM tpch.sf0_01.customer");
    let out = minispark(&["submit", &bad, "--master", &url]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    let again = minispark(&["submit", &s, "--master", &url, "--format", "csv"]);
    assert_eq!(stdout_ok(&again), text);
    drop(procs);
}

/// Killing the client cancels its job: the executors stop the tasks and the
/// driver gets every slot back.
#[test]
fn client_disconnect_cancels_the_job() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cluster = runtime.block_on(crate::common::cluster(2));
    let dir = tempfile::tempdir().unwrap();
    // Generating SF10 lineitem takes far longer than this test waits.
    let s = script(&dir, "long.sql", "SELECT count(*) FROM tpch.sf10.lineitem");
    let mut client = Command::new(BIN)
        .args(["submit", &s, "--master", &cluster.driver.url()])
        .env("MINISPARK_SECRET", cluster.secret())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = &cluster.driver.cluster;
    let total = state.size().1;
    let deadline = Instant::now() + Duration::from_secs(60);
    while state.running_tasks() == 0 {
        assert!(Instant::now() < deadline, "the job never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    client.kill().unwrap();
    client.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while state.running_tasks() > 0 || state.free_slots() < total {
        assert!(
            Instant::now() < deadline,
            "tasks still running after the client left: {} running, {} of {total} slots free",
            state.running_tasks(),
            state.free_slots()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(cluster);
}

/// External tables over CSV and JSON files, and a view over them.
#[test]
fn csv_and_json_tables() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("titles.csv");
    std::fs::write(&csv, "title_id,name\n1,Dark\n2,Narcos\n3,Ozark\n").unwrap();
    let json = dir.path().join("views.json");
    std::fs::write(
        &json,
        "{\"title_id\": 1, \"minutes\": 50}\n{\"title_id\": 1, \"minutes\": 10}\n{\"title_id\": 3, \"minutes\": 45}\n",
    )
    .unwrap();
    let s = script(
        &dir,
        "q.sql",
        &format!(
            "CREATE EXTERNAL TABLE titles STORED AS CSV LOCATION '{}' OPTIONS ('format.has_header' 'true');
             CREATE EXTERNAL TABLE views STORED AS JSON LOCATION '{}';
             CREATE VIEW watched AS SELECT t.name, sum(v.minutes) AS minutes FROM views v JOIN titles t ON v.title_id = t.title_id GROUP BY t.name;
             SELECT * FROM watched ORDER BY name;",
            csv.display(),
            json.display()
        ),
    );
    let out = stdout_ok(&minispark(&[
        "submit", &s, "--master", "local[2]", "--format", "csv",
    ]));
    assert_eq!(out, "name,minutes\nDark,60\nOzark,45\n");
}

#[test]
fn shuffle_demo_shows_the_map_by_reduce_matrix() {
    let out = minispark(&["demo", "shuffle", "--scale", "tiny", "--partitions", "3"]);
    let text = stdout_ok(&out);
    // The first two queries, their stages, a matrix per shuffle and the
    // network split.
    let (first_two, distribute_by) = text
        .split_once("=== 3. DISTRIBUTE BY")
        .expect("the third example, DISTRIBUTE BY");
    assert_eq!(
        first_two.matches("rows written by each map task").count(),
        4,
        "{text}"
    );
    // The third: its shuffle is a stage named after DISTRIBUTE BY, and every
    // device is in the partition pmod(hash(device), 3) says.
    assert!(
        distribute_by.contains("asked for by DISTRIBUTE BY")
            && distribute_by.contains("rows written by each map task"),
        "{distribute_by}"
    );
    let rows: Vec<Vec<&str>> = distribute_by
        .lines()
        .filter(|l| l.starts_with("| ") && !l.contains("device"))
        .map(|l| {
            l.split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert!(rows.len() >= 3, "{distribute_by}");
    for row in &rows {
        assert_eq!(
            row[1], row[2],
            "partition != pmod(hash(device), 3): {row:?}"
        );
    }
    assert!(text.contains("over the network"), "{text}");
    assert!(text.contains("| mobile |"), "{text}");
    // The join's events shuffle moves every event: its matrix total is the
    // table's row count (20,000 at the tiny scale).
    let events_matrix = text
        .split("Stage 1's shuffle")
        .nth(1)
        .expect("the events' shuffle matrix");
    let totals: u64 = events_matrix
        .lines()
        .find(|l| l.trim_start().starts_with("reduce partition total"))
        .unwrap()
        .split_whitespace()
        .filter_map(|w| w.parse::<u64>().ok())
        .sum();
    assert_eq!(totals, 20_000, "{events_matrix}");
    let err = minispark(&["demo", "shuffle", "--partitions", "0"]);
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("--partitions must be at least 1"));
}

#[test]
fn skew_demo_runs_the_join_four_ways_with_equal_answers() {
    let out = minispark(&["demo", "skew", "--rows", "100000", "--partitions", "16"]);
    let text = stdout_ok(&out);
    // The four runs, then the uniform reference.
    for section in [
        "=== 1. plain shuffled join",
        "=== 2. broadcast join",
        "=== 3. salted join",
        "=== 4. adaptive (split)",
        "=== Reference: the plain shuffled join on uniform keys",
        "=== Side by side",
    ] {
        assert!(text.contains(section), "no {section:?} in:\n{text}");
    }
    // The top title's share, from the generator's Zipf law.
    assert!(text.contains("the most watched title holds"), "{text}");
    // A histogram of the join's reduce partitions in every shuffled run
    // (plain, salted, adaptive, uniform), 16 bars each; none for broadcast.
    assert!(
        text.matches("the join's reduce partitions (stage").count() >= 4,
        "{text}"
    );
    assert!(
        text.contains("the join's reduce partitions: none"),
        "{text}"
    );
    let plain = text
        .split("=== 1. plain shuffled join")
        .nth(1)
        .and_then(|s| s.split("=== 2.").next())
        .unwrap();
    let bars = plain
        .lines()
        .filter(|l| l.trim_start().starts_with('p') && l.contains(" rows "))
        .count();
    assert_eq!(bars, 16, "{plain}");
    // The hot partition is obvious: marked skewed in the plain run, split
    // by adaptive execution.
    assert!(plain.contains("<- skewed"), "{plain}");
    let adaptive = text
        .split("=== 4. adaptive (split)")
        .nth(1)
        .and_then(|s| s.split("=== Reference").next())
        .unwrap();
    assert!(adaptive.contains("split into"), "{adaptive}");
    assert_eq!(
        text.matches("task time min").count(),
        5,
        "task times of every run's join stage: {text}"
    );
    assert!(text.contains("max/median"), "{text}");
    assert!(text.contains("| film "), "{text}");
    assert!(
        text.contains("The answers of the four runs are equal"),
        "{text}"
    );
    let err = minispark(&["demo", "skew", "--rows", "10"]);
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("--rows must be at least 1000"));
}

/// Logs written to a pipe carry no ANSI colour codes, from the CLI process
/// and from the executor processes it starts (their stderr is its own).
#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(&dir, "q.sql", "SELECT count(*) FROM tpch.sf0_01.nation;");
    let out = minispark_with(&["submit", &s, "--master", "local[1]"], |c| {
        c.env("RUST_LOG", "info").env_remove("NO_COLOR");
    });
    let stdout = stdout_ok(&out);
    assert!(stdout.contains("25"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Something was logged, by the driver and by the executor.
    assert!(stderr.contains("INFO"), "{stderr}");
    assert!(stderr.contains("job started"), "{stderr}");
    assert!(stderr.contains("executor listening"), "{stderr}");
    assert!(
        !stderr.contains("\x1b["),
        "colour codes in a piped log: {stderr:?}"
    );
}

/// `minispark settings` lists every declared setting; `--markdown` prints
/// the README's table (tests/readme.rs checks the README against it).
#[test]
fn settings_lists_every_setting() {
    use minispark::planner::config::{SETTINGS, settings_markdown};
    let table = stdout_ok(&minispark(&["settings", "--markdown"]));
    assert_eq!(table, settings_markdown());
    let plain = stdout_ok(&minispark(&["settings"]));
    for s in SETTINGS {
        let line = format!("{} = {}  (accepts {})", s.name(), s.default, s.accepts);
        assert!(plain.contains(&line), "{line} in {plain}");
        assert!(plain.contains(s.description), "{} in {plain}", s.key);
    }
    let help = stdout_ok(&minispark(&["--help"]));
    assert!(help.contains("settings"), "{help}");
}

/// An empty result still shows its columns: a table's header, CSV's header
/// line, `[]` for a JSON array; JSON lines print nothing (no header exists).
#[test]
fn empty_results_show_their_columns() {
    let dir = tempfile::tempdir().unwrap();
    // Zero rows out of a shuffle (GROUP BY) and out of a plain projection.
    let s = script(
        &dir,
        "q.sql",
        "SELECT n_regionkey AS r, count(*) AS c FROM tpch.sf0_01.nation WHERE n_nationkey < 0 GROUP BY 1 ORDER BY 1;
         SELECT n_name AS name FROM tpch.sf0_01.nation WHERE n_nationkey > 1000;",
    );
    let run = |format: &str| {
        stdout_ok(&minispark(&[
            "submit", &s, "--master", "local[1]", "--format", format,
        ]))
    };
    assert_eq!(
        run("table"),
        "+---+---+\n| r | c |\n+---+---+\n+---+---+\n\n+------+\n| name |\n+------+\n+------+\n"
    );
    assert_eq!(run("csv"), "r,c\nname\n");
    assert_eq!(run("json-array"), "[]\n[]\n");
    // JSON lines have no header: an empty result is no lines at all.
    assert_eq!(run("json"), "");
    assert_eq!(run("ndjson"), "");
}

/// A query with a shuffle whose scan stage runs for seconds, so a terminal
/// would show its progress bar.
const PROGRESS_QUERY: &str = "SELECT l_returnflag, count(*) AS n FROM tpch.sf1.lineitem \
     GROUP BY l_returnflag ORDER BY l_returnflag;";

/// Control characters other than newline and tab (escape codes, carriage
/// returns a progress bar redraws with), as `(offset, byte)`.
fn control_characters(bytes: &[u8]) -> Vec<(usize, u8)> {
    bytes
        .iter()
        .enumerate()
        .filter(|&(_, &b)| (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f)
        .map(|(i, &b)| (i, b))
        .take(10)
        .collect()
}

/// `submit` piped, or with its results in a file, prints no progress and
/// no control characters (Spark's console progress bar is for terminals).
#[test]
fn submit_piped_or_to_a_file_prints_no_progress() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(&dir, "q.sql", PROGRESS_QUERY);
    let out = minispark_with(&["submit", &s, "--master", "local[2]"], |c| {
        c.env("TERM", "xterm-256color");
    });
    let stdout = stdout_ok(&out);
    assert!(stdout.contains("1478493"), "{stdout}");
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        assert_eq!(control_characters(bytes), [], "{name}: {text:?}");
        assert!(!text.contains("[Stage "), "progress on a pipe: {text}");
    }

    // Results to a file (the shell redirects stdout), stderr still piped.
    let file = dir.path().join("out.csv");
    let out = output_bounded(
        Command::new("sh")
            .args(["-c", "exec \"$0\" \"$@\" > \"$OUT\"", BIN, "submit", &s])
            .args(["--master", "local[2]", "--format", "csv"])
            .env("OUT", &file)
            .env("TERM", "xterm-256color"),
        Duration::from_secs(300),
        "minispark submit > out.csv",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read(&file).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&written).lines().next(),
        Some("l_returnflag,n")
    );
    for (name, bytes) in [("the csv file", &written), ("stderr", &out.stderr)] {
        assert_eq!(
            control_characters(bytes),
            [],
            "{name}: {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

/// On a terminal (a pseudo-terminal made by util-linux's `script`),
/// `submit` draws `[Stage N: done/total tasks]` bars while the job runs,
/// and the results still arrive whole.
#[test]
fn submit_on_a_terminal_shows_stage_progress() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(&dir, "q.sql", PROGRESS_QUERY);
    let command = format!("{BIN} submit {s} --master local[2]");
    let out = output_bounded(
        Command::new("script")
            .args(["--quiet", "--return", "--command", &command, "/dev/null"])
            .env("TERM", "xterm-256color")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null()),
        Duration::from_secs(300),
        "minispark submit under script(1)",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "script(1) (util-linux, needed for a pseudo-terminal) failed: {:?}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1478493"), "{text}");
    let label = stage_label_in(&text);
    assert!(
        label.is_some(),
        "no [Stage N: d/t tasks] bar on a terminal: {text:?}"
    );
}

/// The first `[Stage N: D/T tasks]` in `text`.
fn stage_label_in(text: &str) -> Option<&str> {
    let start = text.find("[Stage ")?;
    let end = start + text[start..].find(" tasks]")? + " tasks]".len();
    let label = &text[start..end];
    let inner = label.strip_prefix("[Stage ")?.strip_suffix(" tasks]")?;
    let (stage, counts) = inner.split_once(": ")?;
    let (done, total) = counts.split_once('/')?;
    (stage.parse::<usize>().is_ok()
        && done.parse::<usize>().is_ok()
        && total.parse::<usize>().is_ok())
    .then_some(label)
}

/// Against a remote driver (`minispark driver` and an executor started by
/// hand), `submit` on a terminal draws the stage bars from the progress
/// the driver streams.
#[test]
fn submit_to_a_remote_driver_on_a_terminal_shows_stage_progress() {
    let dir = tempfile::tempdir().unwrap();
    let mut driver = Command::new(BIN)
        .args(["driver", "--listen", "127.0.0.1:0", "--ui-port", "0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let log = collect_lines(driver.stderr.take().unwrap());
    let mut procs = Processes::default();
    procs.push("driver", driver);
    let prefix = "minispark driver listening on ";
    let url = wait_for_line(&log, Duration::from_secs(60), "the driver's URL", |l| {
        l.starts_with(prefix)
    })[prefix.len()..]
        .trim()
        .to_string();
    procs.push(
        "executor",
        Command::new(BIN)
            .args(["executor", "--driver", &url, "--listen", "127.0.0.1:0"])
            .args(["--slots", "2", "--work-dir"])
            .arg(dir.path().join("e0"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Until the executor has registered, the driver answers "no executors".
    let ping = script(&dir, "ping.sql", "SELECT count(*) FROM tpch.sf0_01.nation;");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = minispark(&["submit", &ping, "--master", &url]);
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no executor within a minute: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let s = script(&dir, "q.sql", PROGRESS_QUERY);
    let command = format!("{BIN} submit {s} --master {url}");
    let out = output_bounded(
        Command::new("script")
            .args(["--quiet", "--return", "--command", &command, "/dev/null"])
            .env("TERM", "xterm-256color")
            .stdin(Stdio::null()),
        Duration::from_secs(300),
        "minispark submit --master http://... under script(1)",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}\n{text}", out.status);
    assert!(text.contains("1478493"), "{text}");
    assert!(
        stage_label_in(&text).is_some(),
        "no [Stage N: d/t tasks] bar from a remote driver: {text:?}"
    );
    drop(procs);
}
