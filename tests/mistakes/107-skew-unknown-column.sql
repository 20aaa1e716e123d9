-- wrong: SKEW names a column the table does not have
-- expect: SKEW
-- expect: no_such_column
-- expect: n_regionkey
SELECT /*+ SKEW('n', 'no_such_column') */ n.n_name, count(*) FROM tpch.sf0_01.nation n JOIN tpch.sf0_01.region r ON n.n_regionkey = r.r_regionkey GROUP BY 1;
