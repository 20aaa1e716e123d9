-- wrong: COPY of a table that does not exist
-- expect: missing_tbl
COPY missing_tbl TO '$OUT/x/' STORED AS PARQUET;
