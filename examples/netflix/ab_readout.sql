-- A/B test readout: every experiment analysed separately.
--
-- Per experiment and variant: viewers, mean and sample variance of watch
-- minutes. Then Welch's two-sample t statistic
--     t = (mean_t - mean_c) / sqrt(var_t/n_t + var_c/n_c)
-- with Welch-Satterthwaite degrees of freedom
--     df = (var_t/n_t + var_c/n_c)^2
--          / ((var_t/n_t)^2/(n_t-1) + (var_c/n_c)^2/(n_c-1))
-- and the two-sided p-value 2 * (1 - student_t_cdf(|t|, df)). With
-- thousands of viewers per arm the t distribution is all but normal, so
-- the z-test's p-value 2 * (1 - normal_cdf(|t|)) agrees.
--
-- student_t_cdf and normal_cdf are minispark built-in functions.
WITH per_variant AS (
    SELECT a.experiment_id,
           a.variant,
           COUNT(*) AS n,
           AVG(m.watch_minutes) AS mean,
           VAR_SAMP(m.watch_minutes) AS variance
    FROM netflix.small.experiment_assignments a
    JOIN netflix.small.experiment_metrics m
      ON a.experiment_id = m.experiment_id AND a.user_id = m.user_id
    GROUP BY a.experiment_id, a.variant
),
arms AS (
    SELECT c.experiment_id,
           c.n AS n_control,
           t.n AS n_treatment,
           c.mean AS mean_control,
           t.mean AS mean_treatment,
           c.variance / c.n AS se2_control,
           t.variance / t.n AS se2_treatment
    FROM per_variant c
    JOIN per_variant t ON c.experiment_id = t.experiment_id
    WHERE c.variant = 'control' AND t.variant = 'treatment'
),
tested AS (
    SELECT *,
           (mean_treatment - mean_control) / SQRT(se2_control + se2_treatment) AS t_stat,
           POWER(se2_control + se2_treatment, 2)
             / (POWER(se2_control, 2) / (n_control - 1)
                + POWER(se2_treatment, 2) / (n_treatment - 1)) AS df
    FROM arms
)
SELECT experiment_id,
       n_control,
       n_treatment,
       ROUND(mean_control, 2) AS mean_control,
       ROUND(mean_treatment, 2) AS mean_treatment,
       ROUND(100 * (mean_treatment / mean_control - 1), 2) AS lift_pct,
       ROUND(t_stat, 4) AS t_stat,
       ROUND(df, 1) AS df,
       ROUND(2 * (1 - student_t_cdf(ABS(t_stat), df)), 6) AS p_value,
       ROUND(2 * (1 - normal_cdf(ABS(t_stat))), 6) AS p_value_z,
       2 * (1 - student_t_cdf(ABS(t_stat), df)) < 0.05 AS significant
FROM tested
ORDER BY experiment_id;
