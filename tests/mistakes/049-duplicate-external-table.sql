-- wrong: an external table created twice
-- expect: statement 2 at line 2
-- expect: t
CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '$DATA/good/';
CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '$DATA/good/';
