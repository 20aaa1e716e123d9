-- wrong: a corrupt Parquet file behind a table with a declared schema: the scan's error names the file
-- expect: corrupt.parquet
-- expect: statement 2 at line 2
CREATE EXTERNAL TABLE t (k BIGINT) STORED AS PARQUET LOCATION '$DATA/corrupt.parquet';
SELECT count(*) FROM t;
