//! TPC-H in bounded executor memory (issue 11): the 22 queries on an
//! embedded cluster whose executors each get `--memory` (1g by default) and
//! 2 slots, at each scale factor given, beside single-node DataFusion in
//! the same run twice: with no memory limit (the answer every minispark
//! result is compared with, exactly, and the time baseline) and with
//! `--datafusion-memory` (2g by default; which queries it fails is the bar).
//!
//! ```text
//! cargo bench --bench tpch_memory -- --scale-factors 1,10 --memory 1g --datafusion-memory 2g
//! ```
//!
//! Prints, as Markdown ready for BENCHMARKS.md: the header (command,
//! commit, date, machine), one table per scale factor (each query once on
//! each engine: its time, what minispark spilled, whether its answer equals
//! DataFusion's), each executor process's peak resident memory as the
//! kernel counted it (`VmHWM` in `/proc/PID/status`, read after the last
//! query; a fresh cluster per scale factor), and the ratio of minispark's
//! total times between the scale factors. Data is generated once as
//! Parquet under `target/tpch-sf<SF>` (or `--data-root DIR`).
//! `--partitions N` (default: the machine's cores) is DataFusion's target
//! partitions and, unless `--shuffle-partitions N` is given, minispark's
//! `minispark.shuffle.partitions` too.

use std::path::PathBuf;
use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../tests/compare.rs"]
#[allow(dead_code)]
mod compare;

use common::report;
use compare::Expected;

use arrow::array::RecordBatch;
use datafusion::common::Result;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use minispark::local::{LocalCluster, LocalClusterOptions};
use minispark::planner::config::parse_size;

const TABLES: [&str; 8] = [
    "nation", "region", "part", "supplier", "partsupp", "customer", "orders", "lineitem",
];

struct Args {
    scale_factors: Vec<f64>,
    executors: usize,
    slots: usize,
    memory: u64,
    datafusion_memory: u64,
    partitions: usize,
    /// minispark's shuffle partitions; `--partitions` when not given.
    shuffle_partitions: Option<usize>,
    queries: Vec<usize>,
    data_root: Option<PathBuf>,
}

impl Args {
    fn shuffle_partitions(&self) -> usize {
        self.shuffle_partitions.unwrap_or(self.partitions)
    }
}

fn parse_args() -> Args {
    let mut args = Args {
        scale_factors: vec![1.0, 10.0],
        executors: 2,
        slots: 2,
        memory: 1 << 30,
        datafusion_memory: 2 << 30,
        partitions: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        shuffle_partitions: None,
        queries: (1..=22).collect(),
        data_root: None,
    };
    let size = |v: String| parse_size(&v).unwrap_or_else(|| panic!("not a size: {v}"));
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--scale-factors" => {
                args.scale_factors = value()
                    .split(',')
                    .map(|s| s.trim().parse().expect("scale factor"))
                    .collect()
            }
            "--executors" => args.executors = value().parse().expect("number"),
            "--slots" => args.slots = value().parse().expect("number"),
            "--memory" => args.memory = size(value()),
            "--datafusion-memory" => args.datafusion_memory = size(value()),
            "--partitions" => args.partitions = value().parse().expect("number"),
            "--shuffle-partitions" => {
                args.shuffle_partitions = Some(value().parse().expect("number"))
            }
            "--queries" => {
                args.queries = value()
                    .split(',')
                    .map(|q| q.trim().parse().expect("query number"))
                    .collect()
            }
            "--data-root" => args.data_root = Some(PathBuf::from(value())),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// One query's outcome on one engine.
enum Outcome {
    Ran(Duration),
    Failed(String),
}

impl Outcome {
    fn cell(&self) -> String {
        match self {
            Outcome::Ran(d) => format!("{:.1}", d.as_secs_f64() * 1e3),
            // The first line of the error, shortened: the table's cell.
            Outcome::Failed(e) => {
                let line = e.lines().next().unwrap_or("");
                let short: String = line.chars().take(90).collect();
                format!("failed: {}", short.replace('|', "/"))
            }
        }
    }
}

async fn run_datafusion(ctx: &SessionContext, sql: &str) -> (Outcome, Option<Expected>) {
    let start = Instant::now();
    let df = match ctx.sql(sql).await {
        Ok(df) => df,
        Err(e) => return (Outcome::Failed(e.to_string()), None),
    };
    match Expected::from_dataframe(df).await {
        Ok(expected) => (Outcome::Ran(start.elapsed()), Some(expected)),
        Err(e) => (Outcome::Failed(e.to_string()), None),
    }
}

async fn run_minispark(
    session: &minispark::driver::job::JobSession,
    sql: &str,
) -> Result<(Duration, Vec<RecordBatch>)> {
    let start = Instant::now();
    let mut batches = vec![];
    for statement in minispark::driver::job::parse_script(sql)? {
        let mut stream = session.execute_statement(statement).await?.stream;
        while let Some(b) = stream.next().await {
            batches.push(b?);
        }
    }
    Ok((start.elapsed(), batches))
}

async fn datafusion_context(
    data: &std::path::Path,
    partitions: usize,
    memory_limit: Option<u64>,
) -> Result<SessionContext> {
    let config = SessionConfig::new().with_target_partitions(partitions);
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = memory_limit {
        // DataFusion's own way to bound a session (`datafusion-cli
        // --memory-limit` does the same), spilling to the OS temp dir.
        runtime = runtime.with_memory_limit(limit as usize, 1.0);
    }
    let ctx = SessionContext::new_with_config_rt(config, runtime.build_arc()?);
    for t in TABLES {
        let path = data.join(t);
        ctx.register_parquet(t, path.to_str().expect("utf-8 path"), Default::default())
            .await?;
    }
    Ok(ctx)
}

/// Peak resident memory of process `pid` in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// What one scale factor printed and measured.
struct ScaleRun {
    markdown: String,
    minispark_total: Duration,
    all_right: bool,
    peak_rss: Vec<u64>,
}

async fn run_scale(args: &Args, sf: f64) -> Result<ScaleRun> {
    let root = args.data_root.clone();
    let data = match root {
        Some(root) => root.join(format!("tpch-sf{sf}")),
        None => common::data_dir(None, &format!("tpch-sf{sf}")),
    };
    common::generate_once(&data, "lineitem", &format!("TPC-H SF{sf}"), |dir| {
        minispark::datagen::tpch::write_tpch_parquet(sf, dir).map(|_| ())
    })?;
    let unlimited = datafusion_context(&data, args.partitions, None).await?;
    let limited = datafusion_context(&data, args.partitions, Some(args.datafusion_memory)).await?;

    let mut options = LocalClusterOptions::new(args.executors)?;
    options.binary = PathBuf::from(env!("CARGO_BIN_EXE_minispark"));
    options.slots = args.slots;
    options.memory = Some(args.memory);
    let cluster = LocalCluster::start(options).await?;
    let settings = [(
        "minispark.shuffle.partitions".to_string(),
        args.shuffle_partitions().to_string(),
    )]
    .into_iter()
    .collect();
    let session = cluster.driver.session(&settings)?;
    for t in TABLES {
        let ddl = format!(
            "CREATE EXTERNAL TABLE {t} STORED AS PARQUET LOCATION '{}/'",
            data.join(t).display()
        );
        run_minispark(&session, &ddl).await?;
    }

    let mut markdown = format!(
        "#### SF{sf}\n\n| query | DataFusion ms | DataFusion {} ms | minispark ms | ratio | minispark spilled | answer |\n|---|---:|---:|---:|---:|---:|---|\n",
        short_size(args.datafusion_memory)
    );
    let (mut df_total, mut ms_total) = (Duration::ZERO, Duration::ZERO);
    let mut all_right = true;
    let mut limited_failures = vec![];
    for &q in &args.queries {
        let path = format!("{}/tests/tpch/queries/q{q}.sql", env!("CARGO_MANIFEST_DIR"));
        let sql = std::fs::read_to_string(&path).expect("query file");
        let (df, expected) = run_datafusion(&unlimited, &sql).await;
        let (df_limited, _) = run_datafusion(&limited, &sql).await;
        if let Outcome::Failed(_) = df_limited {
            limited_failures.push(format!("q{q}"));
        }
        let ms = run_minispark(&session, &sql).await;
        let spilled = session
            .last_job_counters()
            .map(|c| c.spilled_bytes)
            .unwrap_or(0);
        let (ms_outcome, answer) = match (&ms, &expected) {
            (Ok((_, got)), Some(expected)) => match compare::compare(got, expected) {
                Ok(()) => ("equal".to_string(), true),
                Err(m) => (format!("**differs**: {m}"), false),
            },
            (Ok(_), None) => ("no DataFusion answer".to_string(), false),
            (Err(e), _) => (format!("**failed**: {e}"), false),
        };
        all_right &= answer;
        let ratio = match (&df, &ms) {
            (Outcome::Ran(d), Ok((m, _))) => {
                df_total += *d;
                ms_total += *m;
                format!("{:.2}x", m.as_secs_f64() / d.as_secs_f64())
            }
            _ => "-".to_string(),
        };
        let ms_cell = match &ms {
            Ok((m, _)) => format!("{:.1}", m.as_secs_f64() * 1e3),
            Err(_) => "failed".to_string(),
        };
        let line = format!(
            "| q{q} | {} | {} | {ms_cell} | {ratio} | {} | {} |",
            df.cell(),
            df_limited.cell(),
            if spilled == 0 {
                "0".to_string()
            } else {
                format!("{:.1} MiB", spilled as f64 / (1 << 20) as f64)
            },
            ms_outcome.lines().next().unwrap_or("").replace('|', "/"),
        );
        eprintln!("{line}");
        markdown.push_str(&line);
        markdown.push('\n');
    }
    markdown.push_str(&format!(
        "| **total** | **{:.1}** | | **{:.1}** | **{:.2}x** | | |\n\n",
        df_total.as_secs_f64() * 1e3,
        ms_total.as_secs_f64() * 1e3,
        ms_total.as_secs_f64() / df_total.as_secs_f64(),
    ));
    let peak_rss: Vec<u64> = cluster
        .executor_pids()
        .into_iter()
        .map(|pid| peak_rss(pid).unwrap_or(0))
        .collect();
    markdown.push_str(&format!(
        "SF{sf}: minispark's answers {}; peak RSS of each executor process: {}; \
         DataFusion with a {} memory limit failed {}.\n\n",
        if all_right {
            "all equal DataFusion's"
        } else {
            "**not all equal DataFusion's**"
        },
        peak_rss
            .iter()
            .map(|b| gib(*b))
            .collect::<Vec<_>>()
            .join(", "),
        short_size(args.datafusion_memory),
        if limited_failures.is_empty() {
            "no query".to_string()
        } else {
            format!(
                "{} of {}: {}",
                limited_failures.len(),
                args.queries.len(),
                limited_failures.join(", ")
            )
        },
    ));
    drop(session);
    drop(cluster);
    // DataFusion's contexts hold no memory between queries, but their
    // Parquet metadata caches do: dropped before the next scale factor.
    drop((unlimited, limited));
    Ok(ScaleRun {
        markdown,
        minispark_total: ms_total,
        all_right,
        peak_rss,
    })
}

/// `1g` for 1 GiB: sizes as the flags spell them.
fn short_size(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 30) {
        format!("{}g", bytes >> 30)
    } else {
        format!("{}m", bytes >> 20)
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args();
    let mut runs = vec![];
    for &sf in &args.scale_factors {
        runs.push((sf, run_scale(&args, sf).await?));
    }
    println!("{}", report::run_header("tpch_memory"));
    println!(
        "- minispark: {} executor processes, {} slots and `--memory {}` each, \
         `minispark.shuffle.partitions` {}; single-node DataFusion with {} target partitions, \
         once with no memory limit (the answers and the time baseline) and once with \
         a {} limit (`RuntimeEnvBuilder::with_memory_limit`). Each query runs once on each.",
        args.executors,
        args.slots,
        short_size(args.memory),
        args.shuffle_partitions(),
        args.partitions,
        short_size(args.datafusion_memory),
    );
    println!();
    for (_, run) in &runs {
        print!("{}", run.markdown);
    }
    let limit = args.memory + args.memory / 2;
    for (sf, run) in &runs {
        let within = run.peak_rss.iter().all(|b| *b < limit);
        println!(
            "- SF{sf}: answers {}; every executor's peak RSS under {}: {}.",
            if run.all_right { "right" } else { "**wrong**" },
            gib(limit),
            if within { "yes" } else { "**no**" },
        );
    }
    if let (Some((sf1, small)), Some((sf2, large))) = (runs.first(), runs.last())
        && runs.len() > 1
    {
        let ratio = large.minispark_total.as_secs_f64() / small.minispark_total.as_secs_f64();
        let bound = sf2 / sf1 * 1.2;
        println!(
            "- minispark's total time, SF{sf2} / SF{sf1}: {ratio:.2} (target: at most {bound:.0}): {}.",
            if ratio <= bound { "met" } else { "**not met**" }
        );
    }
    Ok(())
}
