//! The streaming-service example jobs: minispark vs single-node DataFusion.
//!
//! ```text
//! cargo bench --bench netflix -- --scale 1 --executors 2 --iterations 3
//! ```
//!
//! Every SQL example of `examples/netflix/` runs against the same Parquet
//! files (generated once under `--data`, default `target/netflix-s<scale>`)
//! in both engines, each run in a fresh session, with as many DataFusion
//! partitions as minispark shuffle partitions. Prints, as Markdown ready
//! for BENCHMARKS.md, a header (command, commit, date, machine, both
//! engines' settings as read from their session configs, the jobs' own
//! `SET` statements) and the median time of each job with the minispark /
//! DataFusion ratio. `--conf KEY=VALUE` adds a setting to the minispark
//! sessions, `--datafusion-conf KEY=VALUE` to the DataFusion ones.

use std::path::{Path, PathBuf};
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;

use common::report;
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
    /// Extra settings of the minispark sessions (`--conf`).
    conf: Vec<(String, String)>,
    /// Extra settings of the DataFusion baseline (`--datafusion-conf`).
    datafusion_conf: Vec<(String, String)>,
}

fn parse_args() -> Args {
    let mut args = Args {
        scale: 1.0,
        executors: 2,
        partitions: 2,
        iterations: 3,
        jobs: examples::netflix_sql_examples(),
        data: None,
        conf: vec![],
        datafusion_conf: vec![],
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
            "--conf" => args.conf.push(common::key_value(&value())),
            "--datafusion-conf" => args.datafusion_conf.push(common::key_value(&value())),
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

/// A fresh DataFusion session of the baseline: minispark's functions and
/// settings registered, so a job's `SET minispark.*` is accepted (and has
/// no effect on DataFusion); DataFusion's own settings are its defaults
/// with the partition count and `--datafusion-conf`.
fn datafusion_context(args: &Args) -> Result<SessionContext> {
    let mut config = SessionConfig::new()
        .with_target_partitions(args.partitions)
        .with_option_extension(MinisparkConfig::default());
    for (key, value) in &args.datafusion_conf {
        config.options_mut().set(key, value)?;
    }
    Ok(SessionContext::new_with_state(session_state(config)))
}

/// The `SET` statements of each job's script, as "job: SET ..; SET .." lines.
fn jobs_set_statements(jobs: &[String]) -> Vec<String> {
    jobs.iter()
        .filter_map(|job| {
            let sql = job_sql(job, Path::new("."));
            let sets: Vec<String> = sql
                .lines()
                .map(str::trim)
                .filter(|l| l.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("set ")))
                .map(|l| format!("`{}`", l.trim_end_matches(';')))
                .collect();
            (!sets.is_empty()).then(|| format!("{job}: {}", sets.join(", ")))
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
    let mut settings: std::collections::HashMap<String, String> = [(
        "minispark.shuffle.partitions".to_string(),
        args.partitions.to_string(),
    )]
    .into_iter()
    .collect();
    settings.extend(args.conf.iter().cloned());
    let ddl = table_ddl(&data);
    let out = tempfile::tempdir().map_err(datafusion::error::DataFusionError::from)?;

    let mut table = common::RatioTable::new("job");
    for job in &args.jobs {
        let (mut df_times, mut ms_times) = (vec![], vec![]);
        for i in 0..args.iterations {
            // Fresh sessions: a job's SET statements must not leak into the next.
            let ctx = datafusion_context(&args)?;
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
    let (markdown, total, (worst, worst_ratio)) = table.finish();

    // The settings every job starts from, read from sessions made as above
    // (minispark sets some DataFusion options of its session when it plans,
    // so the probe plans one query).
    let probe = cluster.driver.session(&settings)?;
    run_minispark(&probe, "EXPLAIN SELECT 1").await?;
    let ms_config = probe.context().copied_config();
    let df_config = datafusion_context(&args)?.copied_config();
    let (executors, slots) = cluster.driver.cluster.size();
    let params = NetflixParams::with_scale(args.scale);
    println!("{}", report::run_header("netflix"));
    println!(
        "- Data: the netflix data set at scale {} (skew {}, seed {}) as Parquet in `{}`, \
         read by both engines; every SQL example of `examples/netflix/` with `netflix.small.` \
         replaced by these tables",
        args.scale,
        params.skew,
        params.seed,
        common::show_path(&data)
    );
    println!(
        "- minispark: {}",
        report::minispark_line(ms_config.options(), executors, slots)
    );
    println!(
        "- DataFusion baseline: {}; minispark's SQL functions registered",
        report::datafusion_line(df_config.options())
    );
    println!(
        "- Each job runs {} times on each engine, alternating, each time in a fresh session \
         of each; the table gives the medians. A job's time is every statement of its script, \
         results read back to the driver.",
        args.iterations
    );
    for line in jobs_set_statements(&args.jobs) {
        println!(
            "- Settings a job changes itself (minispark applies them; DataFusion accepts \
             `minispark.*` ones and ignores them): {line}"
        );
    }
    println!();
    println!(
        "{}",
        report::settings_table(df_config.options(), ms_config.options())
    );
    print!("{markdown}");
    println!();
    println!(
        "Total: minispark {total:.2}x DataFusion's time; worst job {worst} at {worst_ratio:.2}x."
    );
    Ok(())
}
