-- wrong: STORED AS DELTA, not a format minispark reads
-- expect: DELTA
-- expect: PARQUET
CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '$DATA/good/';
