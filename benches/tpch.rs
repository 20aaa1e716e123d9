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

#[path = "common/mod.rs"]
mod common;

use datafusion::common::Result;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

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
    let data = common::data_dir(args.data.clone(), &format!("tpch-sf{}", args.scale_factor));
    common::generate_once(
        &data,
        "lineitem",
        &format!("TPC-H SF{}", args.scale_factor),
        |dir| minispark::datagen::tpch::write_tpch_parquet(args.scale_factor, dir).map(|_| ()),
    )?;
    let cluster = common::start_cluster(args.executors).await?;
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
    let mut table = common::RatioTable::new("query", 5);
    for &q in &args.queries {
        let path = format!("{}/tests/tpch/queries/q{q}.sql", env!("CARGO_MANIFEST_DIR"));
        let sql = std::fs::read_to_string(&path).expect("query file");
        let (mut df_times, mut ms_times) = (vec![], vec![]);
        for _ in 0..args.iterations {
            df_times.push(time_datafusion(&ctx, &sql).await?);
            ms_times.push(time_minispark(&session, &sql).await?);
        }
        table.row(
            &format!("q{q}"),
            common::median(df_times),
            common::median(ms_times),
        );
    }
    table.finish();
    Ok(())
}
