//! The skewed join with the DataFrame API: the same job as the first
//! statement of `netflix/skewed_join.sql`. Viewing events joined to titles,
//! where one title holds a large share of the events.
//!
//! ```text
//! cargo run --release --example skewed_join [-- SCALE]
//! ```
//! The program prints the stage graph with what each stage measured (rows,
//! bytes, task time min / median / max), then the ten most viewed titles.

use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::WindowFunctionDefinition;
use datafusion::logical_expr::expr::WindowFunction;
use minispark::prelude::*;

/// Views, minutes and share of all events for the ten most viewed titles.
pub async fn job(session: &Session, scale: &str) -> Result<DataFrame> {
    let events = session
        .table(format!("netflix.{scale}.viewing_events"))
        .await?;
    let titles = session.table(format!("netflix.{scale}.titles")).await?;
    // SUM(views) OVER (): an aggregate used as a window over all rows.
    let all_views = Expr::from(WindowFunction::new(
        WindowFunctionDefinition::AggregateUDF(sum_udaf()),
        vec![col("views")],
    ));
    events
        .join(titles, JoinType::Inner, &["title_id"], &["title_id"], None)?
        .aggregate(
            vec![col("title"), col("kind")],
            vec![
                count(lit(1)).alias("views"),
                sum(col("watched_minutes")).alias("minutes"),
            ],
        )?
        .window(vec![all_views.alias("all_views")])?
        .select(vec![
            col("title"),
            col("kind"),
            col("views"),
            col("minutes"),
            round(vec![lit(100.0) * col("views") / col("all_views"), lit(2)]).alias("share_pct"),
        ])?
        .sort(vec![
            col("views").sort(false, true),
            col("title").sort(true, false),
        ])?
        .limit(0, Some(10))
}

#[tokio::main]
async fn main() -> Result<()> {
    let scale = std::env::args().nth(1).unwrap_or_else(|| "small".into());
    let session = Session::builder().master("local[2]").build().await?;
    let df = job(&session, &scale).await?;
    println!("{}", df.explain_analyze().await?);
    df.show().await
}
