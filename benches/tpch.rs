//! TPC-H runner: the 22 queries on minispark (an embedded cluster of
//! executor processes) and on single-node DataFusion with the same partition
//! count, in the same run. Prints, as Markdown ready for BENCHMARKS.md, a
//! header (command, commit, date, machine, both engines' settings as read
//! from their session configs) and per-query medians with their ratio.
//!
//! ```text
//! cargo bench --bench tpch -- --scale-factor 1 --executors 2 --iterations 3
//! ```
//!
//! With `--ui-overhead`, the baseline is not DataFusion but minispark with
//! its web UI and event log off, and the measured engine minispark with
//! both on (a second embedded cluster serving its UI on a loopback port,
//! every job writing its event log to a temporary directory), alternating
//! query by query in the same run: the overhead of issue 12.
//!
//! ```text
//! cargo bench --bench tpch -- --scale-factor 1 --executors 2 --iterations 3 --ui-overhead
//! ```
//!
//! With `--table-format iceberg` (or `delta`), the baseline is minispark
//! over the Parquet files and the measured engine minispark over Iceberg
//! (Delta Lake) tables holding the same rows, loaded once from those files
//! by the format's own Python package (`tests/fixtures/iceberg_tpch.py`
//! with pyiceberg, `tests/fixtures/delta_tpch.py` with `deltalake`, from
//! the virtualenvs `.ci/install-test-deps` makes), on one cluster,
//! alternating query by query: the overhead of the table format (issue 14).
//!
//! ```text
//! cargo bench --bench tpch -- --scale-factor 1 --executors 2 --iterations 3 --table-format iceberg
//! cargo bench --bench tpch -- --scale-factor 1 --executors 2 --iterations 3 --table-format delta
//! ```
//!
//! Data is generated once as Parquet under `--data` (default
//! `target/tpch-sf<SF>`), and both engines read the same files. DataFusion
//! runs with its defaults (dynamic filters on, its own join thresholds)
//! plus `--datafusion-conf KEY=VALUE`; minispark with its own plus
//! `--conf KEY=VALUE`. The header lists every DataFusion setting in which
//! the two sessions differ.

use std::path::PathBuf;
use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
mod common;

use common::report;

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
    /// Extra settings of the minispark sessions (`--conf`).
    conf: Vec<(String, String)>,
    /// Extra settings of the DataFusion baseline (`--datafusion-conf`).
    datafusion_conf: Vec<(String, String)>,
    /// Compare minispark with its UI and event log on against both off
    /// (`--ui-overhead`), instead of against DataFusion.
    ui_overhead: bool,
    /// Compare minispark over tables of this format with minispark over
    /// the Parquet files (`--table-format iceberg|delta`).
    table_format: Option<String>,
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
        conf: vec![],
        datafusion_conf: vec![],
        ui_overhead: false,
        table_format: None,
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
            "--conf" => args.conf.push(common::key_value(&value())),
            "--datafusion-conf" => args.datafusion_conf.push(common::key_value(&value())),
            "--ui-overhead" => args.ui_overhead = true,
            "--table-format" => {
                let format = value().to_ascii_lowercase();
                assert!(
                    format == "iceberg" || format == "delta",
                    "--table-format takes iceberg or delta"
                );
                args.table_format = Some(format);
            }
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
    if args.ui_overhead {
        return ui_overhead(&args, &data).await;
    }
    if args.table_format.is_some() {
        return table_format_overhead(&args, &data).await;
    }
    let cluster = common::start_cluster(args.executors).await?;
    let mut settings: std::collections::HashMap<String, String> = [(
        "minispark.shuffle.partitions".to_string(),
        args.partitions.to_string(),
    )]
    .into_iter()
    .collect();
    settings.extend(args.conf.iter().cloned());
    let session = cluster.driver.session(&settings)?;
    let mut config = SessionConfig::new().with_target_partitions(args.partitions);
    for (key, value) in &args.datafusion_conf {
        config.options_mut().set(key, value)?;
    }
    let ctx = SessionContext::new_with_config(config);
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

    let mut table = common::RatioTable::new("query");
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
    let (markdown, total, (worst, worst_ratio)) = table.finish();

    // The header is written after the run: minispark sets some DataFusion
    // options of its session (partitions, join thresholds) when it plans.
    let (executors, slots) = cluster.driver.cluster.size();
    let ms_config = session.context().copied_config();
    let df_config = ctx.copied_config();
    println!("{}", report::run_header("tpch"));
    println!(
        "- Data: TPC-H SF{} as Parquet in `{}` (tpchgen), read by both engines; queries {}",
        args.scale_factor,
        common::show_path(&data),
        query_list(&args.queries)
    );
    println!(
        "- minispark: {}",
        report::minispark_line(ms_config.options(), executors, slots)
    );
    println!(
        "- DataFusion baseline: {}",
        report::datafusion_line(df_config.options())
    );
    println!(
        "- Each query runs {} times on each engine, alternating; the table gives the medians. \
         A minispark time is the whole job: planning, every stage, the result read back to the driver.",
        args.iterations
    );
    println!();
    println!(
        "{}",
        report::settings_table(df_config.options(), ms_config.options())
    );
    print!("{markdown}");
    println!();
    println!(
        "Total: minispark {total:.2}x DataFusion's time; worst query {worst} at {worst_ratio:.2}x. \
         Target (issue 2): total at most 1.5x and no query above 3x: {}.",
        if total <= 1.5 && worst_ratio <= 3.0 {
            "met"
        } else {
            "**not met**"
        }
    );
    Ok(())
}

/// "1-22" for all queries, else the list.
fn query_list(queries: &[usize]) -> String {
    if queries == (1..=22).collect::<Vec<_>>() {
        "1 to 22".to_string()
    } else {
        queries
            .iter()
            .map(|q| format!("q{q}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `--ui-overhead`: minispark with the web UI and event log off (baseline)
/// against both on, the same queries alternating in one run.
async fn ui_overhead(args: &Args, data: &std::path::Path) -> Result<()> {
    let event_logs = tempfile::tempdir()?;
    let off = common::start_cluster(args.executors).await?;
    let on = common::start_cluster_with_ui(args.executors, Some("127.0.0.1:0")).await?;
    let mut settings: std::collections::HashMap<String, String> = [(
        "minispark.shuffle.partitions".to_string(),
        args.partitions.to_string(),
    )]
    .into_iter()
    .collect();
    settings.extend(args.conf.iter().cloned());
    let off_session = off.driver.session(&settings)?;
    settings.insert(
        "minispark.eventLog.dir".into(),
        event_logs.path().display().to_string(),
    );
    let on_session = on.driver.session(&settings)?;
    for t in TABLES {
        let ddl = format!(
            "CREATE EXTERNAL TABLE {t} STORED AS PARQUET LOCATION '{}/'",
            data.join(t).display()
        );
        time_minispark(&off_session, &ddl).await?;
        time_minispark(&on_session, &ddl).await?;
    }
    let mut table = common::RatioTable::with_headers(
        "query",
        "UI and event log off, ms",
        "UI and event log on, ms",
    );
    for &q in &args.queries {
        let path = format!("{}/tests/tpch/queries/q{q}.sql", env!("CARGO_MANIFEST_DIR"));
        let sql = std::fs::read_to_string(&path).expect("query file");
        let (mut off_times, mut on_times) = (vec![], vec![]);
        for _ in 0..args.iterations {
            off_times.push(time_minispark(&off_session, &sql).await?);
            on_times.push(time_minispark(&on_session, &sql).await?);
        }
        table.row(
            &format!("q{q}"),
            common::median(off_times),
            common::median(on_times),
        );
    }
    let (markdown, total, (worst, worst_ratio)) = table.finish();
    let (executors, slots) = on.driver.cluster.size();
    let logged = std::fs::read_dir(event_logs.path())?.count();
    println!("{}", report::run_header("tpch"));
    println!(
        "- Data: TPC-H SF{} as Parquet in `{}` (tpchgen); queries {}",
        args.scale_factor,
        common::show_path(data),
        query_list(&args.queries)
    );
    println!(
        "- minispark both times: {}",
        report::minispark_line(
            on_session.context().copied_config().options(),
            executors,
            slots
        )
    );
    println!(
        "- Off: no web UI, no event log. On: the driver serves its web UI at {} and every job \
         writes its event log ({logged} files in a temporary directory). Each query runs {} times \
         on each, alternating; the table gives the medians.",
        on.driver.ui_url().unwrap_or_default(),
        args.iterations
    );
    println!();
    print!("{markdown}");
    println!();
    println!(
        "Total: on {total:.3}x off; worst query {worst} at {worst_ratio:.3}x. \
         Target (issue 12): total within 3%: {}.",
        if total <= 1.03 { "met" } else { "**not met**" }
    );
    Ok(())
}

/// How `format`'s tables are loaded: the virtualenv (under the test
/// dependencies) and the fixture script.
fn table_loader(format: &str) -> (&'static str, &'static str) {
    match format {
        "delta" => ("deltalake", "delta_tpch.py"),
        _ => ("pyiceberg", "iceberg_tpch.py"),
    }
}

/// The `format` (iceberg or delta) tables holding the rows of the Parquet
/// tables in `data`, loaded once by the format's Python package into
/// `<data>-<format>`: each table's location.
fn format_tables(
    format: &str,
    data: &std::path::Path,
) -> Result<std::collections::HashMap<String, String>> {
    let (venv, script) = table_loader(format);
    let dir = data.with_file_name(format!(
        "{}-{format}",
        data.file_name().and_then(|n| n.to_str()).unwrap_or("tpch")
    ));
    let saved = dir.join("locations.json");
    if !saved.exists() {
        let deps = std::env::var_os("MINISPARK_TEST_DEPS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                    .join(".cache/minispark-test-deps")
            });
        let python = deps.join(venv).join("bin/python");
        assert!(
            python.exists(),
            "{} is missing: run .ci/install-test-deps ({venv} loads the {format} tables)",
            python.display()
        );
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        eprintln!(
            "loading {} into {format} tables in {}",
            data.display(),
            dir.display()
        );
        let script = format!("{}/tests/fixtures/{script}", env!("CARGO_MANIFEST_DIR"));
        let out = std::process::Command::new(&python)
            .arg(script)
            .arg(data)
            .arg(&dir)
            .output()?;
        assert!(
            out.status.success(),
            "loading into {format} tables failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&saved, &out.stdout)?;
    }
    let text = std::fs::read_to_string(&saved)?;
    serde_json::from_str(&text).map_err(|e| {
        datafusion::common::DataFusionError::Execution(format!("{}: {e}", saved.display()))
    })
}

/// `--table-format iceberg|delta`: minispark over the Parquet files
/// (baseline) against minispark over Iceberg or Delta tables of the same
/// rows, one cluster, the same queries alternating in one run.
async fn table_format_overhead(args: &Args, data: &std::path::Path) -> Result<()> {
    let format = args.table_format.as_deref().unwrap_or("iceberg");
    let locations = format_tables(format, data)?;
    let (name, stored_as) = match format {
        "delta" => ("Delta", "DELTA"),
        _ => ("Iceberg", "ICEBERG"),
    };
    let cluster = common::start_cluster(args.executors).await?;
    let mut settings: std::collections::HashMap<String, String> = [(
        "minispark.shuffle.partitions".to_string(),
        args.partitions.to_string(),
    )]
    .into_iter()
    .collect();
    settings.extend(args.conf.iter().cloned());
    let parquet = cluster.driver.session(&settings)?;
    let tables = cluster.driver.session(&settings)?;
    for t in TABLES {
        let ddl = format!(
            "CREATE EXTERNAL TABLE {t} STORED AS PARQUET LOCATION '{}/'",
            data.join(t).display()
        );
        time_minispark(&parquet, &ddl).await?;
        let location = locations
            .get(t)
            .unwrap_or_else(|| panic!("no {name} table {t}"));
        let ddl = format!("CREATE EXTERNAL TABLE {t} STORED AS {stored_as} LOCATION '{location}'");
        time_minispark(&tables, &ddl).await?;
    }
    let measured = format!("{name} tables, ms");
    let mut table = common::RatioTable::with_headers("query", "Parquet files, ms", &measured);
    for &q in &args.queries {
        let path = format!("{}/tests/tpch/queries/q{q}.sql", env!("CARGO_MANIFEST_DIR"));
        let sql = std::fs::read_to_string(&path).expect("query file");
        let (mut parquet_times, mut format_times) = (vec![], vec![]);
        for _ in 0..args.iterations {
            parquet_times.push(time_minispark(&parquet, &sql).await?);
            format_times.push(time_minispark(&tables, &sql).await?);
        }
        table.row(
            &format!("q{q}"),
            common::median(parquet_times),
            common::median(format_times),
        );
    }
    let (markdown, total, (worst, worst_ratio)) = table.finish();
    let (executors, slots) = cluster.driver.cluster.size();
    println!("{}", report::run_header("tpch"));
    println!(
        "- Data: TPC-H SF{} as Parquet in `{}` (tpchgen), and the same rows as {name} tables \
         loaded from those files by {} (`tests/fixtures/{}`); queries {}",
        args.scale_factor,
        common::show_path(data),
        table_loader(format).0,
        table_loader(format).1,
        query_list(&args.queries)
    );
    println!(
        "- minispark both times: {}",
        report::minispark_line(tables.context().copied_config().options(), executors, slots)
    );
    println!(
        "- Each query runs {} times over each, alternating, on one cluster; the table gives \
         the medians.",
        args.iterations
    );
    println!();
    print!("{markdown}");
    println!();
    println!(
        "Total: {name} {total:.3}x Parquet; worst query {worst} at {worst_ratio:.3}x. \
         Target (issue 14): total overhead under 15%: {}.",
        if total < 1.15 { "met" } else { "**not met**" }
    );
    Ok(())
}
