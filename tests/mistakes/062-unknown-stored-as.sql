-- wrong: STORED AS a format that does not exist
-- expect: FOOBAR
-- expect: PARQUET
-- expect: CSV
-- expect: JSON
CREATE EXTERNAL TABLE t STORED AS FOOBAR LOCATION '$DATA/good/';
