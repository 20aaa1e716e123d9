-- wrong: SKEW without arguments
-- expect: SKEW
SELECT /*+ SKEW() */ count(*) FROM tpch.sf0_01.nation n;
