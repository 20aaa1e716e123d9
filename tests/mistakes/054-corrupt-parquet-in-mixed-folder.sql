-- wrong: one file of a folder has a corrupt footer
-- expect: b-bad.parquet
-- expect: statement 1 at line 1
CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '$DATA/mixed/';
SELECT count(*) FROM t;
