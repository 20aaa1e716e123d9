//! Generation rate of the netflix data set's fact tables, on one thread.
//!
//! ```text
//! cargo bench --bench netflix_gen -- --scale 1 --skew 1.2 --seed 42 --runs 3
//! ```
//!
//! Generates all of `viewing_events` and `playback_telemetry` at the scale
//! (one partition, so one core), block by block, and measures rows per
//! second of generation time (Arrow batches built, nothing written), and
//! the share of viewing events of the most watched title: the hot key the
//! skew knob sets. Baseline in the same run: tpchgen-arrow's lineitem. The
//! goal is at least 5 million viewing events per second per core in a
//! release build. `--runs` repeats the whole measurement; the output is a
//! Markdown table (one line per run) under a header (command, commit, date,
//! machine), ready for BENCHMARKS.md; progress goes to stderr.

use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

use common::report;
use minispark_datagen::netflix::{NetflixParams, NetflixTable};
use tpchgen::generators::LineItemGenerator;
use tpchgen_arrow::LineItemArrow;

fn parse_args() -> (NetflixParams, usize) {
    let mut params = NetflixParams::with_scale(1.0);
    let mut runs = 1;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--scale" => params.scale = value().parse().expect("number"),
            "--skew" => params.skew = value().parse().expect("number"),
            "--seed" => params.seed = value().parse().expect("integer"),
            "--runs" => runs = value().parse().expect("integer"),
            "--bench" => {}
            other => panic!("unknown argument {other}; expected --scale, --skew, --seed, --runs"),
        }
    }
    params.validate().expect("valid parameters");
    assert!(runs > 0, "--runs must be at least 1");
    (params, runs)
}

/// Generates every block of `table` on this thread; calls `inspect` on each
/// batch outside the timed part. Returns (rows, generation time).
fn generate(
    table: NetflixTable,
    params: &NetflixParams,
    mut inspect: impl FnMut(&arrow::array::RecordBatch),
) -> (u64, Duration) {
    // Warm up: the dimension model (titles, episodes, popularity) is built
    // and cached once per process, as in an executor.
    table.generate_block(params, 0).expect("generate");
    let mut rows = 0;
    let mut elapsed = Duration::ZERO;
    for block in 0..table.num_blocks(params) {
        let start = Instant::now();
        let batch = table.generate_block(params, block).expect("generate");
        elapsed += start.elapsed();
        rows += batch.num_rows() as u64;
        inspect(&batch);
    }
    (rows, elapsed)
}

/// Millions of rows per second.
fn rate(rows: u64, elapsed: Duration) -> f64 {
    rows as f64 / elapsed.as_secs_f64() / 1e6
}

/// One run's rates (M rows/s), the top title's share of the events, and
/// the rows generated of each table.
struct Run {
    viewing: f64,
    telemetry: f64,
    lineitem: f64,
    top: f64,
    rows: [u64; 3],
}

fn measure(params: &NetflixParams) -> Run {
    let mut per_title = vec![0u64; params.titles() as usize + 1];
    let (events, elapsed) = generate(NetflixTable::ViewingEvents, params, |batch| {
        let titles = batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .expect("title_id is Int64");
        for t in titles.values() {
            per_title[*t as usize] += 1;
        }
    });
    let viewing = rate(events, elapsed);
    let top = per_title.iter().copied().max().unwrap_or(0) as f64 / events.max(1) as f64;

    let (sessions, elapsed) = generate(NetflixTable::PlaybackTelemetry, params, |_| {});
    let telemetry = rate(sessions, elapsed);

    // Baseline in the same run: tpchgen's lineitem (16 columns, SF 0.1 per
    // unit of scale), the generator behind the built-in tpch catalog.
    let sf = (0.1 * params.scale).max(0.01);
    let start = Instant::now();
    let mut rows = 0u64;
    for batch in LineItemArrow::new(LineItemGenerator::new(sf, 1, 1)).with_batch_size(8192) {
        rows += batch.expect("lineitem batch").num_rows() as u64;
    }
    let lineitem = rate(rows, start.elapsed());
    Run {
        viewing,
        telemetry,
        lineitem,
        top,
        rows: [events, sessions, rows],
    }
}

fn main() {
    let (params, runs) = parse_args();
    let mut table = String::from(
        "| run | viewing_events M rows/s | playback_telemetry M rows/s | \
         tpch lineitem M rows/s (baseline) | viewing_events / lineitem | top title's share |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    let mut slowest = f64::INFINITY;
    let mut rows = [0; 3];
    for run in 1..=runs {
        let r = measure(&params);
        slowest = slowest.min(r.viewing);
        rows = r.rows;
        let line = format!(
            "| {run} | {:.2} | {:.2} | {:.2} | {:.1}x | {:.1}% |",
            r.viewing,
            r.telemetry,
            r.lineitem,
            r.viewing / r.lineitem,
            100.0 * r.top
        );
        eprintln!("{line}");
        table.push_str(&line);
        table.push('\n');
    }
    println!("{}", report::run_header("netflix_gen"));
    println!(
        "- Data: every block of `viewing_events` ({} rows) and `playback_telemetry` ({} rows) \
         at scale {}, skew {}, seed {} ({} titles), built as Arrow batches on one thread, \
         nothing written; baseline: tpchgen-arrow's `lineitem` at SF {} ({} rows), the \
         generator behind the `tpch` catalog, in the same run",
        rows[0],
        rows[1],
        params.scale,
        params.skew,
        params.seed,
        params.titles(),
        (0.1 * params.scale).max(0.01),
        rows[2],
    );
    println!("- {runs} run(s) of the whole measurement, one after the other, in one process");
    println!();
    print!("{table}");
    println!();
    println!(
        "Target (issue 3): at least 5 M viewing events per second on one core: slowest run \
         {slowest:.2} M/s, {}.",
        if slowest >= 5.0 { "met" } else { "**not met**" }
    );
}
