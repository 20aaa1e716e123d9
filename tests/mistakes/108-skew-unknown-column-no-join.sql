-- wrong: SKEW names a missing column in a query without a join
-- expect: SKEW
-- expect: no_such_column
SELECT /*+ SKEW('n', 'no_such_column') */ count(*) FROM tpch.sf0_01.nation n;
