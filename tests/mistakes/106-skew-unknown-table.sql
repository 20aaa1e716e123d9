-- wrong: SKEW names a table the query does not have
-- expect: SKEW
-- expect: zz
SELECT /*+ SKEW('zz', 'n_name') */ count(*) FROM tpch.sf0_01.nation n;
