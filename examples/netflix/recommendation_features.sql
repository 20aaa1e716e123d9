-- Recommendation features per viewer: activity counts, recency, and genre
-- affinity from the nested genres array of titles.
--
-- unnest(genres) turns one title row into one row per genre, so a viewer's
-- minutes are credited to every genre of what they watched. Affinity =
-- minutes in a genre / the viewer's minutes over all genres. The features
-- of the 20 most active viewers are shown; a real job would write them all
-- (see telemetry_layout.sql for writing Parquet).
WITH title_genres AS (
    SELECT title_id, unnest(genres) AS genre
    FROM netflix.small.titles
),
genre_minutes AS (
    SELECT v.user_id, g.genre, SUM(v.watched_minutes) AS minutes
    FROM netflix.small.viewing_events v
    JOIN title_genres g ON v.title_id = g.title_id
    GROUP BY v.user_id, g.genre
),
ranked AS (
    SELECT user_id,
           genre,
           minutes,
           CAST(minutes AS DOUBLE) / SUM(minutes) OVER (PARTITION BY user_id) AS affinity,
           ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY minutes DESC, genre) AS genre_rank
    FROM genre_minutes
),
top_genres AS (
    SELECT user_id,
           array_agg(genre ORDER BY genre_rank) AS top_genres,
           MAX(affinity) AS top_affinity
    FROM ranked
    WHERE genre_rank <= 3
    GROUP BY user_id
),
activity AS (
    SELECT user_id,
           COUNT(*) AS views,
           SUM(CASE WHEN event_ts >= TIMESTAMP '2025-06-01 00:00:00' THEN 1 ELSE 0 END)
               AS views_last_month,
           COUNT(DISTINCT title_id) AS distinct_titles,
           SUM(watched_minutes) AS minutes,
           MAX(event_ts) AS last_seen
    FROM netflix.small.viewing_events
    GROUP BY user_id
)
SELECT a.user_id,
       a.views,
       a.views_last_month,
       a.distinct_titles,
       a.minutes,
       date_part('day', TIMESTAMP '2025-07-01 00:00:00' - a.last_seen) AS days_since_last_view,
       t.top_genres,
       ROUND(t.top_affinity, 3) AS top_genre_affinity
FROM activity a
JOIN top_genres t ON a.user_id = t.user_id
ORDER BY a.views DESC, a.user_id
LIMIT 20;
