-- wrong: a BIGINT key times a big number cast to TINYINT
-- expect: not retried
SELECT CAST(n_nationkey * 100 AS TINYINT) FROM tpch.sf0_01.nation;
