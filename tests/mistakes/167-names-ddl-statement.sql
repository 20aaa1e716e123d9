-- wrong: a CREATE EXTERNAL TABLE in statement 2 fails
-- expect: statement 2 at line 2
-- expect: nope
SELECT 1;
CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '$DATA/nope/';
