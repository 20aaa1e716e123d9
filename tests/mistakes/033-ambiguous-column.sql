-- wrong: a column both sides of a join have
-- expect: n_name
-- expect: Ambiguous
SELECT n_name FROM tpch.sf0_01.nation a JOIN tpch.sf0_01.nation b ON a.n_nationkey = b.n_nationkey;
