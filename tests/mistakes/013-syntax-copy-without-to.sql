-- wrong: COPY without TO
-- expect: TO
COPY (SELECT 1 AS a) STORED AS PARQUET;
