-- The skewed join: viewing events joined to titles, where one title
-- dominates.
--
-- Title popularity follows a Zipf law (minispark.netflix.skew, default
-- 1.2), so the most watched title holds a large share of all events. A
-- join shuffled by title_id sends every event of that title to the same
-- reduce partition: one task does a large share of the work while the
-- others wait. Three remedies: broadcast the small side (titles) so the
-- events are never shuffled; salt the hot key; or split the skewed
-- partition at run time.
--
-- Statement 1: the answer, as minispark plans it by default (titles is
-- small enough to be broadcast).
SELECT t.title,
       t.kind,
       COUNT(*) AS views,
       SUM(v.watched_minutes) AS minutes,
       ROUND(100.0 * COUNT(*) / SUM(COUNT(*)) OVER (), 2) AS share_pct
FROM netflix.small.viewing_events v
JOIN netflix.small.titles t ON v.title_id = t.title_id
GROUP BY t.title, t.kind
ORDER BY views DESC, t.title
LIMIT 10;

-- Statement 2: force a shuffled join (no broadcast) to see the skew.
SET datafusion.optimizer.hash_join_single_partition_threshold = 0;
SET datafusion.optimizer.hash_join_single_partition_threshold_rows = 0;

-- In the join stage, rows in/out and task time max vs median show one
-- partition far above the rest.
EXPLAIN ANALYZE
SELECT t.title, COUNT(*) AS views, SUM(v.watched_minutes) AS minutes
FROM netflix.small.viewing_events v
JOIN netflix.small.titles t ON v.title_id = t.title_id
GROUP BY t.title;

-- The partition sizes themselves: events per shuffle partition of title_id
-- (Spark's hash partitioning: pmod(hash(key), partitions), written
-- with % since SQL's % keeps the sign).
SELECT ((hash(title_id) % 8) + 8) % 8 AS partition,
       COUNT(*) AS events,
       ROUND(100.0 * COUNT(*) / SUM(COUNT(*)) OVER (), 1) AS share_pct
FROM netflix.small.viewing_events
GROUP BY ((hash(title_id) % 8) + 8) % 8
ORDER BY partition;
