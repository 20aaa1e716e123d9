-- wrong: a cast error after a GROUP BY shuffle
-- expect: not retried
SELECT CAST(max(n_name) AS BIGINT) FROM tpch.sf0_01.nation GROUP BY n_regionkey;
