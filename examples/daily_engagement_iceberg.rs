//! `viewing_events` as an Apache Iceberg table partitioned by day, loaded
//! by a nightly append, and the daily engagement report read from
//! yesterday's snapshot.
//!
//! The nightly load runs at 22:00 UTC: events after the cut-off arrive
//! with the next night's load. So the report on 2025-06-29 that was
//! published that night (the table's first snapshot) misses the day's last
//! two hours, and the same report on today's snapshot is restated with
//! them. Time travel reads the table exactly as it was when the report
//! ran, whatever was appended since: the report can be reproduced.
//!
//! 1. Two appends of `netflix.<scale>.viewing_events` to a table made by
//!    the first, partitioned by `days(event_ts)` (Iceberg's hidden
//!    partitioning: no day column, one folder of files per day). Each
//!    append is written by the executors and committed by the driver as
//!    one snapshot.
//! 2. The table's snapshots (Spark's `<table>.snapshots`).
//! 3. The report for 2025-06-29 at the first snapshot and at the current
//!    one.
//! 4. `EXPLAIN`: the filter on `event_ts` keeps only 2025-06-29's files
//!    (`files=<read> of <in the snapshot>`).
//!
//! ```text
//! cargo run --release --example daily_engagement_iceberg [-- SCALE [FOLDER]]
//! ```
//!
//! The table goes to FOLDER (default `target/minispark-examples/
//! viewing_events_iceberg`, replaced at each run); a folder that already
//! holds a table takes the two appends as more snapshots.

use arrow::datatypes::{DataType, TimeUnit};
use minispark::iceberg::SnapshotChoice;
use minispark::prelude::*;

/// The report's day.
pub const DAY: &str = "2025-06-29";

/// The two nightly loads: the events of `[from, until)` each.
pub const LOADS: [(&str, &str); 2] = [
    // The night of the 28th... of the 29th, at 22:00.
    ("2025-06-28 00:00:00", "2025-06-29 22:00:00"),
    // The night of the 30th: the 29th's last two hours, and the 30th.
    ("2025-06-29 22:00:00", "2025-07-01 00:00:00"),
];

/// How the table is partitioned, in Spark SQL's words.
pub const PARTITION_BY: [&str; 1] = ["days(event_ts)"];

fn timestamp(text: &str) -> Expr {
    cast(lit(text), DataType::Timestamp(TimeUnit::Microsecond, None))
}

/// Events with `event_ts` in `[from, until)`.
fn between(events: DataFrame, from: &str, until: &str) -> Result<DataFrame> {
    events.filter(
        col("event_ts")
            .gt_eq(timestamp(from))
            .and(col("event_ts").lt(timestamp(until))),
    )
}

/// Appends each of [`LOADS`] of `netflix.<scale>.viewing_events` to the
/// Iceberg table at `location` (made partitioned by [`PARTITION_BY`] when
/// there is none): one snapshot each. Returns the rows of each load.
pub async fn load(session: &Session, scale: &str, location: &str) -> Result<Vec<u64>> {
    let mut rows = vec![];
    for (from, until) in LOADS {
        let events = session
            .table(format!("netflix.{scale}.viewing_events"))
            .await?;
        rows.push(
            between(events, from, until)?
                .write_iceberg_partitioned(location, &PARTITION_BY)
                .await?,
        );
    }
    Ok(rows)
}

/// The daily engagement report of `day` (`YYYY-MM-DD`): per device,
/// viewers, plays, hours watched and minutes per viewer, most watched
/// first.
pub fn daily_engagement(events: DataFrame, day: &str) -> Result<DataFrame> {
    // A constant the optimizer folds: the scan sees `event_ts < <literal>`
    // and prunes by it.
    let start = timestamp(&format!("{day} 00:00:00"));
    let one_day = lit(ScalarValue::new_interval_dt(1, 0));
    events
        .filter(
            col("event_ts")
                .gt_eq(start.clone())
                .and(col("event_ts").lt(start + one_day)),
        )?
        .aggregate(
            vec![col("device")],
            vec![
                count_distinct(col("user_id")).alias("viewers"),
                count(lit(1)).alias("plays"),
                sum(col("watched_minutes")).alias("minutes"),
            ],
        )?
        .select(vec![
            col("device"),
            col("viewers"),
            col("plays"),
            round(vec![col("minutes") / lit(60.0), lit(1)]).alias("hours"),
            round(vec![
                cast(col("minutes"), DataType::Float64) / col("viewers"),
                lit(1),
            ])
            .alias("minutes_per_viewer"),
        ])?
        .sort(vec![
            col("hours").sort(false, false),
            col("device").sort(true, false),
        ])
}

/// The table's snapshot ids, oldest first.
pub async fn snapshot_ids(session: &Session, location: &str) -> Result<Vec<i64>> {
    let batches = session
        .iceberg_snapshots(location)
        .await?
        .select(vec![col("snapshot_id")])?
        .collect()
        .await?;
    Ok(batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .expect("snapshot ids are BIGINT")
                .values()
                .to_vec()
        })
        .collect())
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let scale = args.next().unwrap_or_else(|| "small".into());
    let location = match args.next() {
        Some(folder) => folder,
        None => {
            let folder = "target/minispark-examples/viewing_events_iceberg";
            if std::path::Path::new(folder).exists() {
                std::fs::remove_dir_all(folder)?;
            }
            folder.to_string()
        }
    };
    let session = Session::builder().master("local[2]").build().await?;

    let rows = load(&session, &scale, &location).await?;
    println!(
        "appended {rows:?} rows in two nightly loads to {location}, partitioned by {PARTITION_BY:?}"
    );
    println!("\nits snapshots (Spark's <table>.snapshots):");
    session.iceberg_snapshots(&location).await?.show().await?;

    let ids = snapshot_ids(&session, &location).await?;
    let first = ids[ids.len() - LOADS.len()];
    println!("\nthe report on {DAY} as published that night (snapshot {first}):");
    let then = session
        .read_iceberg(&location, SnapshotChoice::Id(first))
        .await?;
    daily_engagement(then, DAY)?.show().await?;

    println!("\nthe same report today, restated with the late events (current snapshot):");
    let now = session
        .read_iceberg(&location, SnapshotChoice::Current)
        .await?;
    let report = daily_engagement(now, DAY)?;
    report.clone().show().await?;

    println!("\nthe scan of the report: the filter on event_ts keeps only {DAY}'s files");
    for line in report.explain().await?.lines() {
        if line.contains("IcebergScanExec") {
            println!("{}", line.trim());
        }
    }
    Ok(())
}
