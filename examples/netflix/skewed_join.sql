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

-- Statement 2: turn automatic broadcasts off to see the skew of a
-- shuffled join. (A hint does it for one join:
-- SELECT /*+ SHUFFLE_HASH(t) */ ...)
SET minispark.sql.autoBroadcastJoinThreshold = -1;

-- EXPLAIN ANALYZE draws the events' shuffle partitions, one bar each, names
-- the hot title (sampled while the shuffle is written), and shows the join
-- stage's slowest task far above its median.
EXPLAIN ANALYZE
SELECT t.title, COUNT(*) AS views, SUM(v.watched_minutes) AS minutes
FROM netflix.small.viewing_events v
JOIN netflix.small.titles t ON v.title_id = t.title_id
GROUP BY t.title;

-- The partition sizes themselves: events per shuffle partition of title_id
-- (Spark's hash partitioning: pmod(hash(key), partitions); pmod, not %,
-- since % keeps the sign of a negative hash).
SELECT pmod(hash(title_id), 8) AS partition,
       COUNT(*) AS events,
       ROUND(100.0 * COUNT(*) / SUM(COUNT(*)) OVER (), 1) AS share_pct
FROM netflix.small.viewing_events
GROUP BY pmod(hash(title_id), 8)
ORDER BY partition;

-- Statement 4: the remedy at run time. Adaptive execution (on by default)
-- splits a skewed partition of a join side into several tasks, each reading
-- a range of the map outputs and the other side's whole partition. Spark's
-- rule calls a partition skewed above 5x the median AND 256 MB; lower the
-- threshold for this small data set, use 16 partitions (the more there
-- are, the further the hot one stands above the median), and watch the
-- join stage's "adaptive: ... skewed pN split into K tasks" line.
SET minispark.skew.skewedPartitionThresholdInBytes = 0;
SET minispark.shuffle.partitions = 16;
EXPLAIN ANALYZE
SELECT t.title, COUNT(*) AS views, SUM(v.watched_minutes) AS minutes
FROM netflix.small.viewing_events v
JOIN netflix.small.titles t ON v.title_id = t.title_id
GROUP BY t.title;

-- Statement 5: the remedy at plan time, key salting (with adaptive
-- execution off, to see salting alone). A sampling pass names the hot
-- titles; their events get a random salt, each title row for them is
-- replicated once per salt, and the join runs on (title_id, salt): the hot
-- title's events spread over several partitions. EXPLAIN ANALYZE's first
-- lines say what was sampled and salted; the events' shuffle now hashes
-- (title_id, salt), and its hot keys are the hot title's pieces.
-- SET minispark.skew.salting = auto does the same without a hint.
SET minispark.adaptive.enabled = false;
EXPLAIN ANALYZE
SELECT /*+ SKEW('v', 'title_id') */ t.title, COUNT(*) AS views,
       SUM(v.watched_minutes) AS minutes
FROM netflix.small.viewing_events v
JOIN netflix.small.titles t ON v.title_id = t.title_id
GROUP BY t.title;

-- The salted answer is the same answer: a distinct count per kind, salted
-- in the join and in the GROUP BY (two phases: per (kind, salt), then per
-- kind).
SELECT /*+ SKEW('v', 'title_id') */ t.kind,
       COUNT(*) AS views,
       COUNT(DISTINCT v.user_id) AS viewers,
       ROUND(AVG(v.watched_minutes), 3) AS avg_minutes
FROM netflix.small.viewing_events v
JOIN netflix.small.titles t ON v.title_id = t.title_id
GROUP BY t.kind
ORDER BY t.kind;
