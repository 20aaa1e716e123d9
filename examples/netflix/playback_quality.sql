-- Playback quality: which ISP / device / CDN groups rebuffer far more
-- than the rest?
--
-- Rebuffer ratio = total rebuffering time / total playing time of a group.
-- A group's z-score compares its ratio with the mean and standard
-- deviation over all groups (window aggregates over the whole result);
-- groups two or more standard deviations above are flagged.
WITH groups AS (
    SELECT isp,
           device,
           cdn,
           COUNT(*) AS sessions,
           CAST(SUM(rebuffer_ms) AS DOUBLE) / SUM(play_ms) AS rebuffer_ratio
    FROM netflix.small.playback_telemetry
    GROUP BY isp, device, cdn
),
scored AS (
    SELECT *,
           (rebuffer_ratio - AVG(rebuffer_ratio) OVER ())
             / STDDEV_SAMP(rebuffer_ratio) OVER () AS z
    FROM groups
)
SELECT isp,
       device,
       cdn,
       sessions,
       ROUND(100 * rebuffer_ratio, 3) AS rebuffer_pct,
       ROUND(z, 2) AS z_score,
       z >= 2 AS flagged
FROM scored
ORDER BY z DESC, isp, device, cdn
LIMIT 15;

-- At very high volume, a deterministic 10% sample of sessions gives the
-- same picture per ISP for a tenth of the work: hash(session_id) picks the
-- same sessions on every run and every cluster.
SELECT isp,
       COUNT(*) AS sampled_sessions,
       ROUND(100.0 * SUM(rebuffer_ms) / SUM(play_ms), 3) AS rebuffer_pct
FROM netflix.small.playback_telemetry
WHERE hash(session_id) % 10 = 0
GROUP BY isp
ORDER BY rebuffer_pct DESC, isp;
