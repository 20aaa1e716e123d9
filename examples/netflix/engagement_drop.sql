-- Engagement drop: who watched less than half as much as the month before?
--
-- Hours per viewer per month, then LAG over each viewer's months. A
-- viewer's first month has no previous month: LAG gives NULL, and a
-- comparison with NULL is never true, so new viewers are never counted as
-- dropping. A month in which a viewer watched nothing has no row, so the
-- previous row is only the previous month when it is one month earlier.
--
-- Stages to look for: one shuffle by (user_id, month) for the monthly
-- sums, one by user_id for the window. The views only name the steps:
-- each query that reads them runs them.
CREATE VIEW monthly AS
SELECT user_id,
       date_trunc('month', event_ts) AS month,
       SUM(watched_minutes) / 60.0 AS hours
FROM netflix.small.viewing_events
GROUP BY user_id, date_trunc('month', event_ts);

CREATE VIEW with_previous AS
SELECT user_id,
       month,
       hours,
       LAG(month) OVER (PARTITION BY user_id ORDER BY month) AS previous_month,
       LAG(hours) OVER (PARTITION BY user_id ORDER BY month) AS previous_hours
FROM monthly;

-- Per month: active viewers, those also active the month before, and
-- those who dropped below half of that month's hours.
WITH compared AS (
    SELECT user_id,
           month,
           hours,
           CASE WHEN previous_month = month - INTERVAL '1 month' THEN previous_hours END
               AS previous_hours
    FROM with_previous
)
SELECT CAST(month AS DATE) AS month,
       COUNT(*) AS active_viewers,
       COUNT(previous_hours) AS also_active_month_before,
       SUM(CASE WHEN hours < 0.5 * previous_hours THEN 1 ELSE 0 END) AS dropped_below_half,
       ROUND(AVG(hours), 3) AS avg_hours
FROM compared
GROUP BY month
ORDER BY month;

-- The viewers with the steepest drop in June.
SELECT user_id,
       ROUND(previous_hours, 2) AS may_hours,
       ROUND(hours, 2) AS june_hours,
       ROUND(hours / previous_hours, 3) AS ratio
FROM with_previous
WHERE month = TIMESTAMP '2025-06-01 00:00:00'
  AND previous_month = TIMESTAMP '2025-05-01 00:00:00'
  AND hours < 0.5 * previous_hours
ORDER BY ratio, user_id
LIMIT 15;
