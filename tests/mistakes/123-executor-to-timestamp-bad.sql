-- wrong: to_timestamp of a nation's name
-- expect: ALGERIA
-- expect: not retried
SELECT to_timestamp(n_name) FROM tpch.sf0_01.nation;
