//! Month-over-month engagement with the DataFrame API: the same job as the
//! first statement of `netflix/engagement_drop.sql`. LAG over each
//! viewer's months; a viewer's first month has no previous one (NULL).
//!
//! ```text
//! cargo run --release --example engagement_drop [-- SCALE]
//! ```

use arrow::datatypes::DataType;
use minispark::prelude::*;

/// Active viewers, returning viewers and viewers who dropped below half
/// of their previous month's hours, per month of `netflix.<scale>`.
pub async fn job(session: &Session, scale: &str) -> Result<DataFrame> {
    let events = session
        .table(format!("netflix.{scale}.viewing_events"))
        .await?;
    let month = date_trunc(lit("month"), col("event_ts"));
    let monthly = events.aggregate(
        vec![col("user_id"), month.alias("month")],
        vec![(sum(col("watched_minutes")) / lit(60.0)).alias("hours")],
    )?;

    let by_user_month = |f: Expr| {
        f.partition_by(vec![col("user_id")])
            .order_by(vec![col("month").sort(true, false)])
            .build()
    };
    let with_previous = monthly.window(vec![
        by_user_month(lag(col("month"), Some(1), None))?.alias("previous_month"),
        by_user_month(lag(col("hours"), Some(1), None))?.alias("previous_hours"),
    ])?;

    // The previous row counts only when it is the calendar month before.
    let one_month = lit(ScalarValue::new_interval_ym(0, 1));
    let previous_hours = when(
        col("previous_month").eq(col("month") - one_month),
        col("previous_hours"),
    )
    .end()?;
    let dropped =
        when(col("hours").lt(lit(0.5) * col("previous_hours")), lit(1)).otherwise(lit(0))?;
    with_previous
        .with_column("previous_hours", previous_hours)?
        .aggregate(
            vec![col("month")],
            vec![
                count(lit(1)).alias("active_viewers"),
                count(col("previous_hours")).alias("also_active_month_before"),
                sum(dropped).alias("dropped_below_half"),
                round(vec![avg(col("hours")), lit(3)]).alias("avg_hours"),
            ],
        )?
        .select(vec![
            cast(col("month"), DataType::Date32).alias("month"),
            col("active_viewers"),
            col("also_active_month_before"),
            col("dropped_below_half"),
            col("avg_hours"),
        ])?
        .sort(vec![col("month").sort(true, false)])
}

#[tokio::main]
async fn main() -> Result<()> {
    let scale = std::env::args().nth(1).unwrap_or_else(|| "small".into());
    let session = Session::builder().master("local[2]").build().await?;
    job(&session, &scale).await?.show().await
}
