//! The streaming-service example jobs: minispark vs single-node DataFusion.
//!
//! ```text
//! cargo bench --bench netflix -- --scale 1 --executors 2 --iterations 3
//! ```
//!
//! Every SQL example of `examples/netflix/` runs against the same Parquet
//! files (generated once under `--data`, default `target/netflix-s<scale>`)
//! in both engines, each run in a fresh session, with as many DataFusion
//! partitions as minispark shuffle partitions. Prints the median time of
//! each job and the minispark / DataFusion ratio.

use std::path::{Path, PathBuf};
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;
#[path = "common/examples.rs"]
mod examples;

use datafusion::common::Result;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use minispark::datagen::netflix::{NetflixParams, NetflixTable, write_netflix_parquet};
use minispark::driver::job::{JobSession, parse_script};
use minispark::planner::config::MinisparkConfig;
use minispark::planner::session::session_state;

struct Args {
    scale: f64,
    executors: usize,
    partitions: usize,
    iterations: usize,
    jobs: Vec<String>,
    data: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut args = Args {
        scale: 1.0,
        executors: 2,
        partitions: 2,
        iterations: 3,
        jobs: examples::netflix_sql_examples(),
        data: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match flag.as_str() {
            "--scale" => args.scale = value().parse().expect("number"),
            "--executors" => args.executors = value().parse().expect("number"),
            "--partitions" => args.partitions = value().parse().expect("number"),
            "--iterations" => args.iterations = value().parse().expect("number"),
            "--jobs" => args.jobs = value().split(',').map(str::to_string).collect(),
            "--data" => args.data = Some(PathBuf::from(value())),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// The example's SQL over plain table names, writing under `out`.
fn job_sql(name: &str, out: &Path) -> String {
    let path = format!("{}/examples/netflix/{name}.sql", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .expect("example file")
        .replace("netflix.small.", "")
        .replace(
            "target/minispark-examples",
            out.to_str().expect("utf-8 path"),
        )
}

fn table_ddl(data: &Path) -> String {
    NetflixTable::ALL
        .iter()
        .map(|t| {
            format!(
                "CREATE EXTERNAL TABLE {} STORED AS PARQUET LOCATION '{}/';\n",
                t.name(),
                data.join(t.name()).display()
            )
        })
        .collect()
}

async fn run_minispark(session: &JobSession, sql: &str) -> Result<()> {
    for statement in parse_script(sql)? {
        let mut stream = session.execute_statement(statement).await?.stream;
        while let Some(b) = stream.next().await {
            b?;
        }
    }
    Ok(())
}

async fn run_datafusion(ctx: &SessionContext, sql: &str) -> Result<()> {
    for statement in parse_script(sql)? {
        let plan = ctx.state().statement_to_plan(statement).await?;
        let mut stream = ctx
            .execute_logical_plan(plan)
            .await?
            .execute_stream()
            .await?;
        while let Some(b) = stream.next().await {
            b?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args();
    let data = common::data_dir(args.data.clone(), &format!("netflix-s{}", args.scale));
    common::generate_once(
        &data,
        "playback_telemetry",
        &format!("netflix scale {}", args.scale),
        |dir| write_netflix_parquet(&NetflixParams::with_scale(args.scale), dir).map(|_| ()),
    )?;
    let cluster = common::start_cluster(args.executors).await?;
    let settings = [(
        "minispark.shuffle.partitions".to_string(),
        args.partitions.to_string(),
    )]
    .into_iter()
    .collect();
    let ddl = table_ddl(&data);
    let out = tempfile::tempdir().map_err(datafusion::error::DataFusionError::from)?;

    println!(
        "netflix scale {} | minispark: {} executors | partitions: {} | iterations: {} (median)",
        args.scale, args.executors, args.partitions, args.iterations
    );
    let mut table = common::RatioTable::new("job", 24);
    for job in &args.jobs {
        let (mut df_times, mut ms_times) = (vec![], vec![]);
        for i in 0..args.iterations {
            // Fresh sessions: a job's SET statements must not leak into the next.
            let ctx = SessionContext::new_with_state(session_state(
                // minispark's settings registered, so a job's `SET minispark.*`
                // is accepted (and has no effect on DataFusion).
                SessionConfig::new()
                    .with_target_partitions(args.partitions)
                    .with_option_extension(MinisparkConfig::default()),
            ));
            run_datafusion(&ctx, &ddl).await?;
            let sql = job_sql(job, &out.path().join(format!("df-{job}-{i}")));
            let start = Instant::now();
            run_datafusion(&ctx, &sql).await?;
            df_times.push(start.elapsed());

            let session = cluster.driver.session(&settings)?;
            run_minispark(&session, &ddl).await?;
            let sql = job_sql(job, &out.path().join(format!("ms-{job}-{i}")));
            let start = Instant::now();
            run_minispark(&session, &sql).await?;
            ms_times.push(start.elapsed());
        }
        table.row(job, common::median(df_times), common::median(ms_times));
    }
    table.finish();
    Ok(())
}
