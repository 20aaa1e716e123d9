-- wrong: the Parquet file does not exist
-- expect: no_such_file.parquet
CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '$DATA/no_such_file.parquet';
SELECT * FROM t;
