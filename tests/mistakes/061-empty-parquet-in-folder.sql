-- wrong: a folder with a good file and a zero-byte one: warned
-- expect: warning
-- expect: zero.parquet
-- exit: 0
-- stdout: 25
CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '$DATA/withempty/';
SELECT count(*) AS n FROM t;
