-- wrong: the file is not Parquet
-- expect: corrupt.parquet
CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '$DATA/corrupt.parquet';
SELECT * FROM t;
