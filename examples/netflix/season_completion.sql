-- Season completion: which seasons do viewers actually finish?
--
-- An episode counts as completed when the viewer watched at least 80% of
-- its runtime. A viewer's completion rate for a season is the number of
-- distinct episodes they completed divided by the episodes in the season;
-- a season's score is the average over everyone who watched any of it.
-- Seasons are ranked with ROW_NUMBER.
--
-- Stages to look for (EXPLAIN): viewing_events is shuffled by episode_id
-- for the join to episodes (or episodes is broadcast), then by
-- (user_id, title_id, season) for the per-viewer counts, then by
-- (title_id, season) for the per-season average.
WITH per_viewer AS (
    SELECT v.user_id,
           e.title_id,
           e.season,
           COUNT(DISTINCT CASE WHEN v.watched_minutes >= 0.8 * e.runtime_minutes
                               THEN e.episode_id END) AS completed
    FROM netflix.small.viewing_events v
    JOIN netflix.small.episodes e ON v.episode_id = e.episode_id
    GROUP BY v.user_id, e.title_id, e.season
),
season_size AS (
    SELECT title_id, season, COUNT(*) AS episodes
    FROM netflix.small.episodes
    GROUP BY title_id, season
),
per_season AS (
    SELECT p.title_id,
           p.season,
           s.episodes,
           COUNT(*) AS viewers,
           AVG(CAST(p.completed AS DOUBLE) / s.episodes) AS completion_rate
    FROM per_viewer p
    JOIN season_size s ON p.title_id = s.title_id AND p.season = s.season
    GROUP BY p.title_id, p.season, s.episodes
)
SELECT ROW_NUMBER() OVER (
           ORDER BY ROUND(completion_rate, 6) DESC, viewers DESC, t.title_id, p.season
       ) AS rank,
       t.title,
       p.season,
       p.episodes,
       p.viewers,
       ROUND(p.completion_rate, 4) AS completion_rate
FROM per_season p
JOIN netflix.small.titles t ON p.title_id = t.title_id
WHERE t.kind = 'series' AND p.viewers >= 50
ORDER BY rank
LIMIT 20;
