//! The bare shuffle: all columns of TPC-H `lineitem` redistributed by
//! `l_partkey`, nothing else (issue 15).
//!
//! ```text
//! cargo bench --bench shuffle -- --scale-factor 1 --executors 2 --iterations 3
//! ```
//!
//! minispark runs `SELECT count(l_orderkey), .., count(l_comment) FROM
//! (SELECT * FROM lineitem DISTRIBUTE BY l_partkey) x` (every column
//! counted, so none is pruned before the shuffle) on an embedded cluster (the driver in this process,
//! `--executors` executor processes, loopback gRPC), once with the shuffle
//! compressed by LZ4 and once uncompressed (`minispark.shuffle.compression`),
//! adaptive execution off so the reduce side has exactly `--partitions`
//! tasks. Nothing but the shuffle moves data: the map stage scans and
//! writes every column, the reduce stage fetches, decodes and counts. The
//! baseline is DataFusion's own in-process `RepartitionExec` of the same
//! Parquet files by the same key into the same partition count (rows move
//! through memory channels, never encoded).
//!
//! For each it prints the median wall time and, for minispark, the bytes
//! the map tasks wrote and the reduce tasks read (compressed, as stored),
//! and the throughput per core: bytes over the summed task time of the
//! stage (a task runs on one core). Below, where a map task's and a reduce
//! task's time goes, by measuring each step alone in this process on the
//! same batches: Arrow IPC encode (with and without LZ4), writing the bytes
//! to a file, reading them back, and decode; fetch over gRPC is the rest of
//! the reduce stage's time.
//!
//! Spark 4's `DISTRIBUTE BY` of the same files, in the same run:
//! `--spark-python PATH` runs `benches/shuffle_spark.py` with that Python
//! (one with `pyspark` 4; Java 17 on the machine) after minispark's rounds
//! and prints its rows below the table. Without it the output says Spark
//! was not run.

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::collections::HashMap;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use common::{median, report};
use datafusion::common::Result;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext, col};
use futures::StreamExt;
use minispark::planner::config::ShuffleCompression;
use minispark::planner::explain::StageMetrics;

struct Args {
    scale_factor: f64,
    executors: usize,
    iterations: usize,
    partitions: usize,
    data: Option<PathBuf>,
    /// A Python with `pyspark` 4: Spark's run of the same shuffle.
    spark_python: Option<PathBuf>,
}

fn parse_args() -> Args {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let mut args = Args {
        scale_factor: 1.0,
        executors: 2,
        iterations: 3,
        partitions: cores,
        data: None,
        spark_python: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match flag.as_str() {
            "--scale-factor" => args.scale_factor = value().parse().expect("number"),
            "--executors" => args.executors = value().parse().expect("number"),
            "--iterations" => args.iterations = value().parse().expect("number"),
            "--partitions" => args.partitions = value().parse().expect("number"),
            "--data" => args.data = Some(PathBuf::from(value())),
            "--spark-python" => args.spark_python = Some(PathBuf::from(value())),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// `count(c)` of every column after the shuffle: the cheapest consumer that
/// keeps every column in it (a plain `count(*)` lets the optimizer prune all
/// columns but the key before the shuffle; the runner checks the bytes).
const QUERY: &str = "SELECT count(l_orderkey), count(l_partkey), count(l_suppkey), \
     count(l_linenumber), count(l_quantity), count(l_extendedprice), count(l_discount), \
     count(l_tax), count(l_returnflag), count(l_linestatus), count(l_shipdate), \
     count(l_commitdate), count(l_receiptdate), count(l_shipinstruct), count(l_shipmode), \
     count(l_comment) FROM (SELECT * FROM lineitem DISTRIBUTE BY l_partkey) x";

/// One minispark run: wall time and the two stages' measurements.
struct Run {
    wall: Duration,
    map: StageMetrics,
    reduce: StageMetrics,
}

async fn run_minispark(session: &minispark::driver::job::JobSession) -> Result<Run> {
    let start = Instant::now();
    let mut statements = minispark::driver::job::parse_script(QUERY)?;
    let plan =
        minispark::driver::job::plan_statement(session.context(), statements.remove(0)).await?;
    let graph = session.plan_stages(plan).await?;
    let job = session.run_graph(&graph).await?;
    let mut stream = job.stream;
    while let Some(b) = stream.next().await {
        b?;
    }
    let wall = start.elapsed();
    let map_id = graph
        .stages
        .iter()
        .find(|s| s.origin.as_deref() == Some("DISTRIBUTE BY"))
        .expect("the DISTRIBUTE BY stage")
        .id;
    let reduce_id = graph.consumers(map_id)[0];
    Ok(Run {
        wall,
        map: job.metrics[map_id].clone(),
        reduce: job.metrics[reduce_id].clone(),
    })
}

/// DataFusion's hash repartition of every column into `partitions`, all
/// output partitions drained at once; returns the wall time and rows.
async fn run_datafusion(ctx: &SessionContext, partitions: usize) -> Result<(Duration, usize)> {
    let start = Instant::now();
    let df =
        ctx.table("lineitem")
            .await?
            .repartition(datafusion::logical_expr::Partitioning::Hash(
                vec![col("l_partkey")],
                partitions,
            ))?;
    let plan: Arc<dyn ExecutionPlan> = df.create_physical_plan().await?;
    let task_ctx = ctx.task_ctx();
    let mut tasks = tokio::task::JoinSet::new();
    for p in 0..plan.properties().partitioning.partition_count() {
        let mut stream = plan.execute(p, Arc::clone(&task_ctx))?;
        tasks.spawn(async move {
            let mut rows = 0;
            while let Some(b) = stream.next().await {
                rows += b?.num_rows();
            }
            Ok::<usize, datafusion::common::DataFusionError>(rows)
        });
    }
    let mut rows = 0;
    while let Some(r) = tasks.join_next().await {
        rows += r.expect("task")?;
    }
    Ok((start.elapsed(), rows))
}

fn sum(times: &[Duration]) -> Duration {
    times.iter().sum()
}

fn mb_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64().max(1e-9)
}

/// Where the time of a shuffle goes, step by step, in this process on the
/// same batches (one core): (step, MB of Arrow data per second).
fn steps(batches: &[RecordBatch], arrow_bytes: u64) -> Result<Vec<(String, f64, u64)>> {
    let mut out = vec![];
    let dir =
        tempfile::tempdir().map_err(|e| datafusion::common::DataFusionError::External(e.into()))?;
    for compression in [ShuffleCompression::Lz4, ShuffleCompression::None] {
        let name = format!("{compression:?}").to_lowercase();
        let options = minispark::planner::ipc::write_options(compression)?;
        let start = Instant::now();
        let mut writer =
            StreamWriter::try_new_with_options(Vec::new(), &batches[0].schema(), options)?;
        for b in batches {
            writer.write(b)?;
        }
        writer.finish()?;
        let bytes = writer.into_inner()?;
        out.push((
            format!("encode ({name})"),
            mb_per_s(arrow_bytes, start.elapsed()),
            bytes.len() as u64,
        ));
        let path = dir.path().join(&name);
        let start = Instant::now();
        std::fs::write(&path, &bytes)
            .map_err(|e| datafusion::common::DataFusionError::External(e.into()))?;
        out.push((
            format!("write to a file ({name})"),
            mb_per_s(arrow_bytes, start.elapsed()),
            bytes.len() as u64,
        ));
        let start = Instant::now();
        let read = std::fs::read(&path)
            .map_err(|e| datafusion::common::DataFusionError::External(e.into()))?;
        out.push((
            format!("read the file ({name})"),
            mb_per_s(arrow_bytes, start.elapsed()),
            bytes.len() as u64,
        ));
        let start = Instant::now();
        let mut rows = 0;
        for b in StreamReader::try_new(Cursor::new(read), None)? {
            rows += b?.num_rows();
        }
        assert_eq!(
            rows,
            batches.iter().map(RecordBatch::num_rows).sum::<usize>()
        );
        out.push((
            format!("decode ({name})"),
            mb_per_s(arrow_bytes, start.elapsed()),
            bytes.len() as u64,
        ));
    }
    Ok(out)
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
    let lineitem = data.join("lineitem");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);

    // The baseline's session, and lineitem as Arrow (its size and the
    // batches the step measurements use).
    let ctx = SessionContext::new_with_config(
        SessionConfig::new().with_target_partitions(args.partitions),
    );
    ctx.register_parquet(
        "lineitem",
        lineitem.to_str().expect("utf-8 path"),
        Default::default(),
    )
    .await?;
    let batches = ctx.table("lineitem").await?.collect().await?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let arrow_bytes: u64 = batches
        .iter()
        .map(|b| b.get_array_memory_size() as u64)
        .sum();
    eprintln!(
        "lineitem: {rows} rows, {:.1} MB as Arrow",
        arrow_bytes as f64 / 1e6
    );
    let step_rates = steps(&batches, arrow_bytes)?;
    drop(batches);

    let cluster = common::start_cluster(args.executors).await?;
    let mut runs: HashMap<&str, Vec<Run>> = HashMap::new();
    let mut df_walls = vec![];
    let modes = [
        ("lz4", "minispark, LZ4"),
        ("none", "minispark, uncompressed"),
    ];
    let mut sessions = vec![];
    for (codec, _) in modes {
        let settings: HashMap<String, String> = [
            ("minispark.shuffle.partitions", args.partitions.to_string()),
            ("minispark.shuffle.compression", codec.to_string()),
            ("minispark.adaptive.enabled", "false".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let session = cluster.driver.session(&settings)?;
        let ddl = format!(
            "CREATE EXTERNAL TABLE lineitem STORED AS PARQUET LOCATION '{}/'",
            lineitem.display()
        );
        for statement in minispark::driver::job::parse_script(&ddl)? {
            session.execute_statement(statement).await?;
        }
        sessions.push(session);
    }
    // One warm-up round, then the measured ones, the engines alternating.
    for round in 0..=args.iterations {
        let (wall, got) = run_datafusion(&ctx, args.partitions).await?;
        assert_eq!(got, rows, "DataFusion's repartition lost rows");
        eprintln!(
            "round {round}: DataFusion {:.1} ms",
            wall.as_secs_f64() * 1e3
        );
        if round > 0 {
            df_walls.push(wall);
        }
        for ((codec, _), session) in modes.iter().zip(&sessions) {
            let run = run_minispark(session).await?;
            assert_eq!(
                run.reduce.rows_in as usize, rows,
                "minispark's shuffle lost rows"
            );
            if *codec == "none" {
                assert!(
                    run.map.bytes_out > arrow_bytes / 2,
                    "only {} of {arrow_bytes} bytes shuffled: columns were pruned",
                    run.map.bytes_out
                );
            }
            eprintln!(
                "round {round}: minispark {codec} {:.1} ms, wrote {} bytes",
                run.wall.as_secs_f64() * 1e3,
                run.map.bytes_out
            );
            if round > 0 {
                runs.entry(codec).or_default().push(run);
            }
        }
    }

    let (executors, slots) = cluster.driver.cluster.size();
    let spark = match &args.spark_python {
        Some(python) => Some(run_spark(python, &data, &args)?),
        None => None,
    };
    println!("{}", report::run_header("shuffle"));
    println!(
        "- Data: TPC-H SF{} `lineitem` as Parquet in `{}` (tpchgen): {rows} rows, {:.1} MB as \
         Arrow in memory; all 16 columns redistributed by `l_partkey` into {} partitions",
        args.scale_factor,
        common::show_path(&data),
        arrow_bytes as f64 / 1e6,
        args.partitions,
    );
    println!(
        "- minispark query: `{}`, adaptive execution off",
        QUERY.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    println!(
        "- minispark: {}",
        report::minispark_line(
            sessions[0].context().copied_config().options(),
            executors,
            slots
        )
    );
    println!(
        "- DataFusion baseline: `RepartitionExec` (hash of `l_partkey`, {} partitions) over the \
         same Parquet scan in this process, every output partition drained at once; {}",
        args.partitions,
        report::datafusion_line(ctx.copied_config().options())
    );
    println!(
        "- One warm-up round, then {} rounds alternating the engines; medians. Per core: bytes \
         over the summed wall time of the stage's tasks (one task per core); \
         {cores} cores on this machine.",
        args.iterations
    );
    println!();
    println!(
        "| run | wall ms | Arrow MB/s per core (wall) | shuffle bytes written | written MB/s per core (map tasks) | bytes read | read MB/s per core (reduce tasks) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let df_wall = median(df_walls);
    println!(
        "| DataFusion RepartitionExec | {:.1} | {:.1} | (in memory) | | | |",
        df_wall.as_secs_f64() * 1e3,
        mb_per_s(arrow_bytes, df_wall) / cores as f64,
    );
    for (codec, label) in modes {
        let runs = &runs[codec];
        let mid = |f: &dyn Fn(&Run) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let wall = median(runs.iter().map(|r| r.wall).collect());
        let written = mid(&|r| r.map.bytes_out as f64) as u64;
        let read = mid(&|r| r.reduce.bytes_in as f64) as u64;
        println!(
            "| {label} | {:.1} | {:.1} | {:.1} MB | {:.1} | {:.1} MB | {:.1} |",
            wall.as_secs_f64() * 1e3,
            mb_per_s(arrow_bytes, wall) / slots.max(1) as f64,
            written as f64 / 1e6,
            mid(&|r| mb_per_s(r.map.bytes_out, sum(&r.map.task_times))),
            read as f64 / 1e6,
            mid(&|r| mb_per_s(r.reduce.bytes_in, sum(&r.reduce.task_times))),
        );
    }
    println!();
    println!(
        "Where the time goes: each step alone, in this process on the same {:.1} MB of Arrow \
         batches, one core (MB of Arrow data per second; the bytes the step handled):",
        arrow_bytes as f64 / 1e6
    );
    println!();
    println!("| step | Arrow MB/s | bytes |");
    println!("|---|---:|---:|");
    for (step, rate, bytes) in &step_rates {
        println!("| {step} | {rate:.1} | {:.1} MB |", *bytes as f64 / 1e6);
    }
    for (codec, label) in modes {
        let runs = &runs[codec];
        let map: Duration = median(runs.iter().map(|r| sum(&r.map.task_times)).collect());
        let reduce: Duration = median(runs.iter().map(|r| sum(&r.reduce.task_times)).collect());
        let remote = runs[runs.len() / 2].reduce.bytes_remote;
        println!();
        println!(
            "{label}: map tasks {:.0} ms in all (scan, partition, encode, write), reduce tasks \
             {:.0} ms in all (fetch, decode, count); {:.1} MB fetched from the other executor.",
            map.as_secs_f64() * 1e3,
            reduce.as_secs_f64() * 1e3,
            remote as f64 / 1e6,
        );
    }
    println!();
    match spark {
        Some(rows) => {
            println!(
                "Spark 4's `SELECT * FROM lineitem DISTRIBUTE BY l_partkey` over the same files, \
                 in this run after minispark's rounds (`benches/shuffle_spark.py`: \
                 `local[{p}]`, {p} shuffle partitions, adaptive execution off, written to the \
                 `noop` sink; one warm-up, then the median of {i}):",
                p = args.partitions,
                i = args.iterations
            );
            println!();
            print!("{rows}");
        }
        None => println!(
            "Spark 4: not run in this run (`--spark-python` with a Python that has pyspark 4)."
        ),
    }
    Ok(())
}

/// Spark's run of the same shuffle: `benches/shuffle_spark.py`'s Markdown
/// rows.
fn run_spark(python: &std::path::Path, data: &std::path::Path, args: &Args) -> Result<String> {
    let script = format!("{}/benches/shuffle_spark.py", env!("CARGO_MANIFEST_DIR"));
    eprintln!("Spark 4: {} {script}", python.display());
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg("--data")
        .arg(data)
        .arg("--iterations")
        .arg(args.iterations.to_string())
        .arg("--partitions")
        .arg(args.partitions.to_string())
        .output()?;
    if !out.status.success() {
        return Err(datafusion::common::DataFusionError::Execution(format!(
            "{script} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
