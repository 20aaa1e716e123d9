-- wrong: a COPY whose query fails on an executor, second statement
-- expect: statement 2 at line 2
-- expect: ALGERIA
SELECT 1;
COPY (SELECT CAST(n_name AS INT) AS n FROM tpch.sf0_01.nation) TO '$OUT/x/' STORED AS PARQUET;
