-- wrong: BROADCAST names a table the query does not have
-- expect: BROADCAST
-- expect: zz
SELECT /*+ BROADCAST(zz) */ count(*) FROM tpch.sf0_01.nation n;
