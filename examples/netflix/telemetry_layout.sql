-- Telemetry table layout: write playback telemetry as Parquet partitioned
-- by date and hour, sorted by user_id inside each partition, then read it
-- back and let the partition folders prune the scan.
--
-- The output folder is relative to where the job runs. COPY adds files to
-- a folder that already exists: remove it before running the job again.
COPY (
    SELECT session_id, user_id, isp, device, cdn, event_ts,
           bitrate_kbps, rebuffer_ms, play_ms,
           CAST(CAST(event_ts AS DATE) AS VARCHAR) AS date,
           CAST(date_part('hour', event_ts) AS INT) AS hour
    FROM netflix.small.playback_telemetry
    ORDER BY user_id, session_id
)
TO 'target/minispark-examples/telemetry'
STORED AS PARQUET
PARTITIONED BY (date, hour);

CREATE EXTERNAL TABLE telemetry
STORED AS PARQUET
LOCATION 'target/minispark-examples/telemetry/';

-- Only the folders of 2025-06-03 between 18:00 and 21:59 are listed in the
-- scan's file groups: the filter never reads the other 164 hours.
EXPLAIN
SELECT isp, COUNT(*) AS sessions
FROM telemetry
WHERE date = '2025-06-03' AND hour IN ('18', '19', '20', '21')
GROUP BY isp;

SELECT hour,
       COUNT(*) AS sessions,
       ROUND(100.0 * SUM(rebuffer_ms) / SUM(play_ms), 3) AS rebuffer_pct
FROM telemetry
WHERE date = '2025-06-03' AND hour IN ('18', '19', '20', '21')
GROUP BY hour
ORDER BY hour;
