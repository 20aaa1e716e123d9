-- Experiment platform checks: bucketing, sample ratio and guardrails.
--
-- 1. Bucketing: a viewer must never be in two variants of one experiment.
--    Assignment is a hash of (experiment, user), so the count is 0.
SELECT experiment_id,
       COUNT(*) AS viewers,
       SUM(CASE WHEN variants > 1 THEN 1 ELSE 0 END) AS in_both_variants
FROM (
    SELECT experiment_id, user_id, COUNT(DISTINCT variant) AS variants
    FROM netflix.small.experiment_assignments
    GROUP BY experiment_id, user_id
) per_user
GROUP BY experiment_id
ORDER BY experiment_id;

-- 2. Sample ratio mismatch: with a 50/50 split, the treatment count is
--    Binomial(n, 1/2); a tiny p-value means the assignment is broken.
SELECT experiment_id,
       COUNT(*) AS n,
       SUM(CASE WHEN variant = 'treatment' THEN 1 ELSE 0 END) AS n_treatment,
       ROUND(2 * (1 - normal_cdf(ABS(
           (SUM(CASE WHEN variant = 'treatment' THEN 1 ELSE 0 END) - COUNT(*) / 2.0)
           / SQRT(COUNT(*) / 4.0)))), 4) AS srm_p_value
FROM netflix.small.experiment_assignments
GROUP BY experiment_id
ORDER BY experiment_id;

-- 3. Guardrail: churn must not rise. A two-proportion z-test per
--    experiment; a guardrail trips when churn is up with p < 0.05.
WITH per_variant AS (
    SELECT a.experiment_id,
           a.variant,
           COUNT(*) AS n,
           AVG(CASE WHEN m.churned THEN 1.0 ELSE 0.0 END) AS churn_rate,
           AVG(m.sessions) AS sessions
    FROM netflix.small.experiment_assignments a
    JOIN netflix.small.experiment_metrics m
      ON a.experiment_id = m.experiment_id AND a.user_id = m.user_id
    GROUP BY a.experiment_id, a.variant
),
arms AS (
    SELECT c.experiment_id,
           c.n AS n_c, t.n AS n_t,
           c.churn_rate AS churn_c, t.churn_rate AS churn_t,
           c.sessions AS sessions_c, t.sessions AS sessions_t,
           (c.churn_rate * c.n + t.churn_rate * t.n) / (c.n + t.n) AS pooled
    FROM per_variant c
    JOIN per_variant t ON c.experiment_id = t.experiment_id
    WHERE c.variant = 'control' AND t.variant = 'treatment'
),
tested AS (
    SELECT *,
           (churn_t - churn_c) / SQRT(pooled * (1 - pooled) * (1.0 / n_c + 1.0 / n_t)) AS z
    FROM arms
)
SELECT experiment_id,
       ROUND(100 * churn_c, 3) AS churn_control_pct,
       ROUND(100 * churn_t, 3) AS churn_treatment_pct,
       ROUND(sessions_c, 3) AS sessions_control,
       ROUND(sessions_t, 3) AS sessions_treatment,
       ROUND(z, 3) AS z,
       ROUND(2 * (1 - normal_cdf(ABS(z))), 6) AS p_value,
       z > 0 AND 2 * (1 - normal_cdf(ABS(z))) < 0.05 AS guardrail_tripped
FROM tested
ORDER BY experiment_id;
