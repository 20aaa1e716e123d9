-- wrong: a zero-byte Parquet file with a declared schema: warned
-- expect: warning
-- expect: empty.parquet
-- exit: 0
-- stdout: 0
CREATE EXTERNAL TABLE t (k BIGINT) STORED AS PARQUET LOCATION '$DATA/empty.parquet';
SELECT count(*) AS n FROM t;
