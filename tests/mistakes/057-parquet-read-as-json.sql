-- wrong: a Parquet folder declared as JSON
-- expect: t
CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '$DATA/good/';
SELECT * FROM t;
