-- Catalog availability: what can members in Germany watch next month
-- (July 2025)?
--
-- A licensing window [start_date, end_date] overlaps the month
-- [2025-07-01, 2025-07-31] when start_date <= '2025-07-31' and
-- end_date >= '2025-07-01'. Titles carry their genres and cast as nested
-- arrays, queried with unnest and array_has.

-- 1. Available titles per genre, and how many arrive or leave in July.
WITH available AS (
    SELECT t.title_id, t.genres, l.start_date, l.end_date
    FROM netflix.small.titles t
    JOIN netflix.small.licensing_windows l ON t.title_id = l.title_id
    WHERE l.region = 'DE'
      AND l.start_date <= DATE '2025-07-31'
      AND l.end_date >= DATE '2025-07-01'
)
SELECT genre,
       COUNT(DISTINCT title_id) AS titles,
       COUNT(DISTINCT CASE WHEN start_date >= DATE '2025-07-01' THEN title_id END) AS arriving,
       COUNT(DISTINCT CASE WHEN end_date <= DATE '2025-07-31' THEN title_id END) AS leaving
FROM (SELECT title_id, unnest(genres) AS genre, start_date, end_date FROM available) g
GROUP BY genre
ORDER BY titles DESC, genre;

-- 2. The first 20 available titles (by id) with their genres and cast.
SELECT DISTINCT t.title_id,
       t.title,
       t.kind,
       t.release_year,
       t.genres,
       t."cast"
FROM netflix.small.titles t
JOIN netflix.small.licensing_windows l ON t.title_id = l.title_id
WHERE l.region = 'DE'
  AND l.start_date <= DATE '2025-07-31'
  AND l.end_date >= DATE '2025-07-01'
ORDER BY t.title_id
LIMIT 20;

-- 3. Available series with a given actor (the first cast member of the
--    most watched title), via array_has on the nested cast list.
WITH star AS (
    SELECT t."cast"[1] AS actor
    FROM netflix.small.titles t
    JOIN (SELECT title_id, COUNT(*) AS views
          FROM netflix.small.viewing_events
          GROUP BY title_id
          ORDER BY views DESC, title_id
          LIMIT 1) most_viewed ON t.title_id = most_viewed.title_id
)
SELECT DISTINCT s.actor, t.title_id, t.title, t.kind
FROM netflix.small.titles t
JOIN netflix.small.licensing_windows l ON t.title_id = l.title_id
CROSS JOIN star s
WHERE array_has(t."cast", s.actor)
  AND l.region = 'DE'
  AND l.start_date <= DATE '2025-07-31'
  AND l.end_date >= DATE '2025-07-01'
ORDER BY t.title_id;
