//! Generation rate of the netflix data set's fact tables, on one thread.
//!
//! ```text
//! cargo bench --bench netflix_gen -- --scale 1 --skew 1.2 --seed 42
//! ```
//!
//! Generates all of `viewing_events` and `playback_telemetry` at the scale
//! (one partition, so one core), block by block, and prints rows per second
//! of generation time (Arrow batches built, nothing written), and the share
//! of viewing events of the most watched title: the hot key the skew knob
//! sets. The goal is at least 5 million viewing events per second per core
//! in a release build.

use std::time::{Duration, Instant};

use minispark_datagen::netflix::{NetflixParams, NetflixTable};
use tpchgen::generators::LineItemGenerator;
use tpchgen_arrow::LineItemArrow;

fn parse_args() -> NetflixParams {
    let mut params = NetflixParams::with_scale(1.0);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--scale" => params.scale = value().parse().expect("number"),
            "--skew" => params.skew = value().parse().expect("number"),
            "--seed" => params.seed = value().parse().expect("integer"),
            "--bench" => {}
            other => panic!("unknown argument {other}; expected --scale, --skew, --seed"),
        }
    }
    params.validate().expect("valid parameters");
    params
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

fn report(table: NetflixTable, rows: u64, elapsed: Duration) {
    let rate = rows as f64 / elapsed.as_secs_f64();
    println!(
        "{:<20} {:>11} rows in {:>7.3} s: {:>6.2} M rows/s on one core ({:.0} ns/row)",
        table.name(),
        rows,
        elapsed.as_secs_f64(),
        rate / 1e6,
        1e9 / rate
    );
}

fn main() {
    let params = parse_args();
    println!(
        "netflix generation: scale {}, skew {}, seed {}, one thread",
        params.scale, params.skew, params.seed
    );

    let mut per_title = vec![0u64; params.titles() as usize + 1];
    let (rows, elapsed) = generate(NetflixTable::ViewingEvents, &params, |batch| {
        let titles = batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .expect("title_id is Int64");
        for t in titles.values() {
            per_title[*t as usize] += 1;
        }
    });
    report(NetflixTable::ViewingEvents, rows, elapsed);
    let (hot, top) = per_title
        .iter()
        .enumerate()
        .max_by_key(|(_, c)| **c)
        .expect("titles");
    println!(
        "  top title {hot} holds {:.1}% of the viewing events ({} titles, skew {})",
        100.0 * *top as f64 / rows.max(1) as f64,
        params.titles(),
        params.skew
    );

    let (rows, elapsed) = generate(NetflixTable::PlaybackTelemetry, &params, |_| {});
    report(NetflixTable::PlaybackTelemetry, rows, elapsed);

    // Baseline in the same run: tpchgen's lineitem (16 columns, SF 0.1 per
    // unit of scale), the generator behind the built-in tpch catalog.
    let sf = (0.1 * params.scale).max(0.01);
    let start = Instant::now();
    let mut rows = 0u64;
    for batch in LineItemArrow::new(LineItemGenerator::new(sf, 1, 1)).with_batch_size(8192) {
        rows += batch.expect("lineitem batch").num_rows() as u64;
    }
    let elapsed = start.elapsed();
    let rate = rows as f64 / elapsed.as_secs_f64();
    println!(
        "{:<20} {:>11} rows in {:>7.3} s: {:>6.2} M rows/s on one core ({:.0} ns/row)  [baseline: tpchgen-arrow]",
        "tpch lineitem",
        rows,
        elapsed.as_secs_f64(),
        rate / 1e6,
        1e9 / rate
    );
}
