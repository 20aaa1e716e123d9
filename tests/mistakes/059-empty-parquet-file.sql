-- wrong: a zero-byte file named .parquet: zero rows, with a warning
-- expect: warning
-- expect: empty.parquet
-- expect: 0 bytes
-- exit: 0
-- stdout: 0
CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '$DATA/empty.parquet';
SELECT count(*) AS n FROM t;
