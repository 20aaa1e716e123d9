-- wrong: a nation's name cast to INT
-- expect: ALGERIA
-- expect: not retried
SELECT CAST(n_name AS INT) FROM tpch.sf0_01.nation;
