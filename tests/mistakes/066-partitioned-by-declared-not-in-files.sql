-- wrong: PARTITIONED BY a declared column the files are not laid out by
-- expect: zz
-- expect: good
CREATE EXTERNAL TABLE t (k BIGINT, name VARCHAR, zz INT) STORED AS PARQUET PARTITIONED BY (zz) LOCATION '$DATA/good/';
SELECT count(*) FROM t;
