-- wrong: a folder with a corrupt file, schema given so only the scan reads it: fails at once
-- expect: Corrupt footer
-- expect: statement 2 at line 2
-- expect: b-bad.parquet
CREATE EXTERNAL TABLE t (k BIGINT, name VARCHAR, r BIGINT) STORED AS PARQUET LOCATION '$DATA/mixed/';
SELECT count(*) FROM t;
