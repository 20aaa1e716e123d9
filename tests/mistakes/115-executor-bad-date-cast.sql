-- wrong: a nation's name cast to DATE
-- expect: ALGERIA
-- expect: not retried
SELECT CAST(n_name AS DATE) FROM tpch.sf0_01.nation;
