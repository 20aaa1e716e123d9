//! A/B test readout with the DataFrame API: the same job as
//! `netflix/ab_readout.sql`. Welch's t-test per experiment, with the
//! built-in `student_t_cdf` and `normal_cdf` functions.
//!
//! ```text
//! cargo run --release --example ab_readout [-- SCALE]
//! ```

use minispark::prelude::*;

/// The readout over `netflix.<scale>`: one row per experiment.
pub async fn job(session: &Session, scale: &str) -> Result<DataFrame> {
    let table = |name: &str| format!("netflix.{scale}.{name}");
    let assignments = session.table(table("experiment_assignments")).await?;
    let metrics = session.table(table("experiment_metrics")).await?;
    // minispark's statistical functions, looked up like any registered UDF.
    let student_t_cdf = session.context().udf("student_t_cdf")?;
    let normal_cdf = session.context().udf("normal_cdf")?;

    // Count, mean and sample variance of watch minutes per variant.
    let per_variant = assignments
        .alias("a")?
        .join_on(
            metrics.alias("m")?,
            JoinType::Inner,
            [
                col("a.experiment_id").eq(col("m.experiment_id")),
                col("a.user_id").eq(col("m.user_id")),
            ],
        )?
        .aggregate(
            vec![col("a.experiment_id"), col("a.variant")],
            vec![
                count(lit(1)).alias("n"),
                avg(col("m.watch_minutes")).alias("mean"),
                var_sample(col("m.watch_minutes")).alias("variance"),
            ],
        )?;

    // Control and treatment side by side.
    let control = per_variant
        .clone()
        .filter(col("variant").eq(lit("control")))?
        .alias("c")?;
    let treatment = per_variant
        .filter(col("variant").eq(lit("treatment")))?
        .alias("t")?;
    let arms = control
        .join_on(
            treatment,
            JoinType::Inner,
            [col("c.experiment_id").eq(col("t.experiment_id"))],
        )?
        .select(vec![
            col("c.experiment_id").alias("experiment_id"),
            col("c.n").alias("n_control"),
            col("t.n").alias("n_treatment"),
            col("c.mean").alias("mean_control"),
            col("t.mean").alias("mean_treatment"),
            (col("c.variance") / col("c.n")).alias("se2_control"),
            (col("t.variance") / col("t.n")).alias("se2_treatment"),
        ])?;

    // Welch's t and the Welch-Satterthwaite degrees of freedom.
    let se2 = col("se2_control") + col("se2_treatment");
    let t_stat = (col("mean_treatment") - col("mean_control")) / sqrt(se2.clone());
    let df = power(se2, lit(2))
        / (power(col("se2_control"), lit(2)) / (col("n_control") - lit(1))
            + power(col("se2_treatment"), lit(2)) / (col("n_treatment") - lit(1)));
    let tested = arms.with_column("t_stat", t_stat)?.with_column("df", df)?;

    let p_value = lit(2) * (lit(1) - student_t_cdf.call(vec![abs(col("t_stat")), col("df")]));
    let p_value_z = lit(2) * (lit(1) - normal_cdf.call(vec![abs(col("t_stat"))]));
    tested
        .select(vec![
            col("experiment_id"),
            col("n_control"),
            col("n_treatment"),
            round(vec![col("mean_control"), lit(2)]).alias("mean_control"),
            round(vec![col("mean_treatment"), lit(2)]).alias("mean_treatment"),
            round(vec![
                lit(100) * (col("mean_treatment") / col("mean_control") - lit(1)),
                lit(2),
            ])
            .alias("lift_pct"),
            round(vec![col("t_stat"), lit(4)]).alias("t_stat"),
            round(vec![col("df"), lit(1)]).alias("df"),
            round(vec![p_value.clone(), lit(6)]).alias("p_value"),
            round(vec![p_value_z, lit(6)]).alias("p_value_z"),
            p_value.lt(lit(0.05)).alias("significant"),
        ])?
        .sort(vec![col("experiment_id").sort(true, false)])
}

#[tokio::main]
async fn main() -> Result<()> {
    let scale = std::env::args().nth(1).unwrap_or_else(|| "small".into());
    let session = Session::builder().master("local[2]").build().await?;
    job(&session, &scale).await?.show().await
}
