-- wrong: MERGE names a table the query does not have
-- expect: MERGE
-- expect: zz
SELECT /*+ MERGE(zz) */ count(*) FROM tpch.sf0_01.nation n;
