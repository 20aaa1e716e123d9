//! Season completion with the DataFrame API: the same job as
//! `netflix/season_completion.sql`, step by step.
//!
//! ```text
//! cargo run --release --example season_completion [-- SCALE]
//! ```
//! SCALE is a schema of the built-in netflix catalog: tiny, small (default),
//! medium or large.

use minispark::prelude::*;

/// The job over `netflix.<scale>`. Building it runs nothing: it is a plan.
pub async fn job(session: &Session, scale: &str) -> Result<DataFrame> {
    let table = |name: &str| format!("netflix.{scale}.{name}");
    let events = session.table(table("viewing_events")).await?.alias("v")?;
    let episodes = session.table(table("episodes")).await?;
    let titles = session.table(table("titles")).await?.alias("t")?;

    // An episode is completed when 80% or more of it was watched. Each
    // viewer's count of distinct completed episodes per season.
    let completed = when(
        col("v.watched_minutes").gt_eq(lit(0.8) * col("e.runtime_minutes")),
        col("e.episode_id"),
    )
    .end()?;
    let per_viewer = events
        .join_on(
            episodes.clone().alias("e")?,
            JoinType::Inner,
            [col("v.episode_id").eq(col("e.episode_id"))],
        )?
        .aggregate(
            vec![col("v.user_id"), col("e.title_id"), col("e.season")],
            vec![count_distinct(completed).alias("completed")],
        )?
        .alias("p")?;

    // Episodes per season.
    let season_size = episodes
        .aggregate(
            vec![col("title_id"), col("season")],
            vec![count(lit(1)).alias("episodes")],
        )?
        .alias("s")?;

    // Average completion rate over the season's viewers.
    let per_season = per_viewer
        .join_on(
            season_size,
            JoinType::Inner,
            [
                col("p.title_id").eq(col("s.title_id")),
                col("p.season").eq(col("s.season")),
            ],
        )?
        .aggregate(
            vec![col("p.title_id"), col("p.season"), col("s.episodes")],
            vec![
                count(lit(1)).alias("viewers"),
                avg(
                    cast(col("p.completed"), arrow::datatypes::DataType::Float64)
                        / col("s.episodes"),
                )
                .alias("completion_rate"),
            ],
        )?
        .alias("ps")?;

    // Rank the series' seasons with enough viewers.
    let rank = row_number()
        .order_by(vec![
            round(vec![col("ps.completion_rate"), lit(6)]).sort(false, true),
            col("ps.viewers").sort(false, true),
            col("t.title_id").sort(true, false),
            col("ps.season").sort(true, false),
        ])
        .build()?
        .alias("rank");
    per_season
        .join_on(
            titles,
            JoinType::Inner,
            [col("ps.title_id").eq(col("t.title_id"))],
        )?
        .filter(
            col("t.kind")
                .eq(lit("series"))
                .and(col("ps.viewers").gt_eq(lit(50))),
        )?
        .window(vec![rank])?
        .select(vec![
            col("rank"),
            col("t.title"),
            col("ps.season"),
            col("ps.episodes"),
            col("ps.viewers"),
            round(vec![col("ps.completion_rate"), lit(4)]).alias("completion_rate"),
        ])?
        .sort(vec![col("rank").sort(true, false)])?
        .limit(0, Some(20))
}

#[tokio::main]
async fn main() -> Result<()> {
    let scale = std::env::args().nth(1).unwrap_or_else(|| "small".into());
    let session = Session::builder().master("local[2]").build().await?;
    let df = job(&session, &scale).await?;
    println!("{}", df.explain().await?);
    df.show().await
}
