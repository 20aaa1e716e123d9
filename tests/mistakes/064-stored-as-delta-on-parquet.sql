-- wrong: STORED AS DELTA over a folder of plain Parquet files (no Delta log)
-- expect: not a Delta table
-- expect: _delta_log
CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '$DATA/good/';
