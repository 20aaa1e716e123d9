//! TPC-H runner: the 22 queries on minispark (an embedded cluster of
//! executor processes) and on single-node DataFusion with the same partition
//! count, in the same run. Prints per-query medians and the ratio.
//!
//! ```text
//! cargo bench --bench tpch -- --scale-factor 1 --executors 2 --iterations 3
//! ```
//!
//! Data is generated once as Parquet under `--data` (default
//! `target/tpch-sf<SF>`), and both engines read the same files.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use datafusion::common::Result;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use minispark::local::{LocalCluster, LocalClusterOptions};

const TABLES: [&str; 8] = [
    "nation", "region", "part", "supplier", "partsupp", "customer", "orders", "lineitem",
];

struct Args {
    scale_factor: f64,
    executors: usize,
    partitions: usize,
    iterations: usize,
    queries: Vec<usize>,
    data: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut args = Args {
        scale_factor: 1.0,
        executors: 2,
        partitions: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        iterations: 3,
        queries: (1..=22).collect(),
        data: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--scale-factor" => args.scale_factor = value().parse().expect("number"),
            "--executors" => args.executors = value().parse().expect("number"),
            "--partitions" => args.partitions = value().parse().expect("number"),
            "--iterations" => args.iterations = value().parse().expect("number"),
            "--queries" => {
                args.queries = value()
                    .split(',')
                    .map(|q| q.trim().parse().expect("query number"))
                    .collect()
            }
            "--data" => args.data = Some(PathBuf::from(value())),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn time_minispark(
    session: &minispark::driver::job::JobSession,
    sql: &str,
) -> Result<Duration> {
    let start = Instant::now();
    for statement in minispark::driver::job::parse_script(sql)? {
        let mut stream = session.execute_statement(statement).await?.stream;
        while let Some(b) = stream.next().await {
            b?;
        }
    }
    Ok(start.elapsed())
}

async fn time_datafusion(ctx: &SessionContext, sql: &str) -> Result<Duration> {
    let start = Instant::now();
    let mut stream = ctx.sql(sql).await?.execute_stream().await?;
    while let Some(b) = stream.next().await {
        b?;
    }
    Ok(start.elapsed())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args();
    let data = args.data.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(format!("tpch-sf{}", args.scale_factor))
    });
    if !data.join("lineitem").exists() {
        eprintln!(
            "generating TPC-H SF{} into {}",
            args.scale_factor,
            data.display()
        );
        minispark::planner::catalog::tpch::write_tpch_parquet(args.scale_factor, &data)?;
    }

    let mut options = LocalClusterOptions::new(args.executors)?;
    options.binary = PathBuf::from(env!("CARGO_BIN_EXE_minispark"));
    let cluster = LocalCluster::start(options).await?;
    let settings = [(
        "minispark.shuffle.partitions".to_string(),
        args.partitions.to_string(),
    )]
    .into_iter()
    .collect();
    let session = cluster.driver.session(&settings)?;
    let ctx = SessionContext::new_with_config(
        SessionConfig::new().with_target_partitions(args.partitions),
    );
    for t in TABLES {
        let path = data.join(t);
        ctx.register_parquet(t, path.to_str().expect("utf-8 path"), Default::default())
            .await?;
        let ddl = format!(
            "CREATE EXTERNAL TABLE {t} STORED AS PARQUET LOCATION '{}/'",
            path.display()
        );
        time_minispark(&session, &ddl).await?;
    }

    println!(
        "TPC-H SF{} | minispark: {} executors | partitions: {} | iterations: {} (median)",
        args.scale_factor, args.executors, args.partitions, args.iterations
    );
    println!(
        "{:>5} {:>14} {:>14} {:>8}",
        "query", "datafusion ms", "minispark ms", "ratio"
    );
    let (mut total_df, mut total_ms) = (Duration::ZERO, Duration::ZERO);
    let mut worst: (usize, f64) = (0, 0.0);
    for &q in &args.queries {
        let path = format!("{}/tests/tpch/queries/q{q}.sql", env!("CARGO_MANIFEST_DIR"));
        let sql = std::fs::read_to_string(&path).expect("query file");
        let (mut df_times, mut ms_times) = (vec![], vec![]);
        for _ in 0..args.iterations {
            df_times.push(time_datafusion(&ctx, &sql).await?);
            ms_times.push(time_minispark(&session, &sql).await?);
        }
        let (df, ms) = (median(df_times), median(ms_times));
        let ratio = ms.as_secs_f64() / df.as_secs_f64();
        if ratio > worst.1 {
            worst = (q, ratio);
        }
        total_df += df;
        total_ms += ms;
        println!(
            "{:>5} {:>14.1} {:>14.1} {:>7.2}x",
            format!("q{q}"),
            df.as_secs_f64() * 1e3,
            ms.as_secs_f64() * 1e3,
            ratio
        );
    }
    println!(
        "{:>5} {:>14.1} {:>14.1} {:>7.2}x   (worst: q{} at {:.2}x)",
        "total",
        total_df.as_secs_f64() * 1e3,
        total_ms.as_secs_f64() * 1e3,
        total_ms.as_secs_f64() / total_df.as_secs_f64(),
        worst.0,
        worst.1
    );
    Ok(())
}
