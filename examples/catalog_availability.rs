//! Catalog availability with the DataFrame API: the same job as the first
//! statement of `netflix/catalog_availability.sql`. Titles licensed in
//! Germany in July 2025, per genre, from the nested genres array.
//!
//! ```text
//! cargo run --release --example catalog_availability [-- SCALE]
//! ```

use arrow::datatypes::DataType;
use minispark::prelude::*;

/// Available, arriving and leaving titles per genre for `region` in July 2025.
pub async fn job(session: &Session, scale: &str, region: &str) -> Result<DataFrame> {
    let titles = session.table(format!("netflix.{scale}.titles")).await?;
    let windows = session
        .table(format!("netflix.{scale}.licensing_windows"))
        .await?;
    let date = |d: &str| cast(lit(d.to_string()), DataType::Date32);
    let (month_start, month_end) = (date("2025-07-01"), date("2025-07-31"));

    // A window overlaps July when it starts before July ends and ends
    // after July starts.
    let available = titles
        .alias("t")?
        .join_on(
            windows.alias("l")?,
            JoinType::Inner,
            [col("t.title_id").eq(col("l.title_id"))],
        )?
        .filter(
            col("l.region")
                .eq(lit(region.to_string()))
                .and(col("l.start_date").lt_eq(month_end.clone()))
                .and(col("l.end_date").gt_eq(month_start.clone())),
        )?
        .select(vec![
            col("t.title_id").alias("title_id"),
            col("t.genres").alias("genre"),
            col("l.start_date").alias("start_date"),
            col("l.end_date").alias("end_date"),
        ])?
        // One row per genre of each title.
        .unnest_columns(&["genre"])?;

    let arriving = when(col("start_date").gt_eq(month_start), col("title_id")).end()?;
    let leaving = when(col("end_date").lt_eq(month_end), col("title_id")).end()?;
    available
        .aggregate(
            vec![col("genre")],
            vec![
                count_distinct(col("title_id")).alias("titles"),
                count_distinct(arriving).alias("arriving"),
                count_distinct(leaving).alias("leaving"),
            ],
        )?
        .sort(vec![
            col("titles").sort(false, true),
            col("genre").sort(true, false),
        ])
}

#[tokio::main]
async fn main() -> Result<()> {
    let scale = std::env::args().nth(1).unwrap_or_else(|| "small".into());
    let session = Session::builder().master("local[2]").build().await?;
    job(&session, &scale, "DE").await?.show().await
}
