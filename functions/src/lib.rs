//! # minispark-functions: the SQL functions every minispark session has
//!
//! Beyond DataFusion's own functions, every minispark session (the driver's
//! and each executor's, so plans that use them serialize by name) has:
//!
//! | module | SQL names | what for |
//! |---|---|---|
//! | [`hash`] | `hash(expr, ...)` | Spark's Murmur3 (seed 42): the same `INT` as Spark SQL's `hash`, and the shuffle's partition ids ([`hash::spark_murmur3::partition_ids`], `pmod(hash(keys), n)`) |
//! | [`stats`] | `normal_cdf`, `normal_quantile`, `student_t_cdf`, `student_t_quantile` | p-values and confidence intervals of A/B tests (below) |
//! | [`salt`] | `salt_pick(salts [, index])` | one of a hot key's salts per row, for key salting |
//! | [`spark_partition_id`] | `spark_partition_id()` | the partition the current task computes, as Spark's (where a `DISTRIBUTE BY` put each row) |
//! | [`spark`] | `pmod`, `date_add`, `last_day`, `soundex`, `sha2`, ... (listed there) | Spark's own functions from the `datafusion-spark` crate, where they do not clash with DataFusion's or minispark's |
//!
//! [`register_all`] registers them all in a `SessionContext`; the planner's
//! session does it for every minispark process.
//!
//! This crate depends on no other minispark crate (only DataFusion, Arrow and
//! the maths crates), so the planner, executor and driver all build on it.
//!
//! # A/B test readouts in SQL
//!
//! An experiment compares a metric between a control and a treatment group.
//! SQL already computes each group's mean `m`, sample variance `v` and count
//! `n` (`avg`, `var_samp`, `count`); what it lacks is the distribution
//! functions that turn them into a p-value and a confidence interval:
//!
//! | function | used for |
//! |---|---|
//! | `student_t_cdf(t, df)` | the p-value of Welch's t-test: `2 * (1 - student_t_cdf(abs(t), df))` |
//! | `student_t_quantile(p, df)` | the critical value of a confidence interval: `student_t_quantile(0.975, df)` for 95% |
//! | `normal_cdf(z)` | the p-value of a z-test, when both groups are large: `2 * (1 - normal_cdf(abs(z)))` |
//! | `normal_quantile(p)` | the z critical value (`normal_quantile(0.975)` = 1.96), and sample sizes for a planned power |
//!
//! **Welch's t-test** does not assume equal variances, which A/B groups rarely
//! have. With `se = sqrt(v1/n1 + v2/n2)`:
//!
//! ```text
//! t  = (m2 - m1) / se
//! df = (v1/n1 + v2/n2)^2 / ((v1/n1)^2 / (n1 - 1) + (v2/n2)^2 / (n2 - 1))   (Welch–Satterthwaite)
//! p  = 2 * (1 - student_t_cdf(|t|, df))                                     (two-sided)
//! 95% interval of m2 - m1:  (m2 - m1) ± student_t_quantile(0.975, df) * se
//! ```
//!
//! `df` is not an integer, which is why `student_t_cdf` takes a real `df`.
//! For a few thousand users per group `df` is large and the t-test and the
//! z-test (`normal_cdf`) agree; for small groups only the t-test is right.
//!
//! The whole readout, one row per experiment, from a table of one row per user:
//!
//! ```sql
//! WITH g AS (
//!     SELECT experiment, variant,
//!            avg(metric) AS m, var_samp(metric) AS v, count(metric) AS n
//!     FROM assignments
//!     GROUP BY experiment, variant
//! ),
//! pair AS (
//!     SELECT c.experiment,
//!            t.m - c.m AS diff,
//!            sqrt(c.v / c.n + t.v / t.n) AS se,
//!            power(c.v / c.n + t.v / t.n, 2)
//!              / (power(c.v / c.n, 2) / (c.n - 1) + power(t.v / t.n, 2) / (t.n - 1)) AS df
//!     FROM g c JOIN g t
//!       ON c.experiment = t.experiment AND c.variant = 'control' AND t.variant = 'treatment'
//! )
//! SELECT experiment, diff, diff / se AS t, df,
//!        2 * (1 - student_t_cdf(abs(diff / se), df)) AS p_value,
//!        diff - student_t_quantile(0.975, df) * se AS ci95_low,
//!        diff + student_t_quantile(0.975, df) * se AS ci95_high
//! FROM pair
//! ORDER BY experiment;
//! ```
//!
//! All four functions take and return `DOUBLE` (integers and decimals are
//! cast), return NULL when an argument is NULL, and NaN outside their domain:
//! a probability outside `[0, 1]`, or `df <= 0`. See [`stats`] for the exact
//! domains, the accuracy and how each is computed.

pub mod hash;
pub mod salt;
pub mod spark;
pub mod spark_partition_id;
pub mod stats;

pub use stats::{register_stats_functions, stats_udfs};

use datafusion::common::Result;
use datafusion::prelude::SessionContext;

/// Registers every function of this crate in `ctx`: `hash` (with its Spark
/// literal typing), `salt_pick`, the statistical functions, then the
/// `datafusion-spark` functions that do not clash ([`spark`]).
pub fn register_all(ctx: &SessionContext) -> Result<()> {
    register_minispark_functions(ctx)?;
    spark::register_spark_functions(ctx);
    Ok(())
}

/// minispark's own functions only: [`register_all`] without [`spark`].
pub fn register_minispark_functions(ctx: &SessionContext) -> Result<()> {
    hash::spark_murmur3::register_spark_hash(ctx)?;
    ctx.register_udf(salt::salt_pick_udf());
    ctx.register_udf(spark_partition_id::spark_partition_id_udf());
    register_stats_functions(ctx);
    Ok(())
}

/// A plain DataFusion context with [`register_all`] applied, for the unit
/// tests (the planner's session is not available below the planner).
#[cfg(test)]
pub(crate) fn test_context() -> SessionContext {
    let ctx = SessionContext::new();
    register_all(&ctx).unwrap();
    ctx
}
