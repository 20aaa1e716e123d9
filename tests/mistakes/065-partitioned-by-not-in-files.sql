-- wrong: PARTITIONED BY a column the flat folder has no folders for
-- expect: zz
-- expect: good
CREATE EXTERNAL TABLE t STORED AS PARQUET PARTITIONED BY (zz) LOCATION '$DATA/good/';
SELECT count(*) FROM t;
