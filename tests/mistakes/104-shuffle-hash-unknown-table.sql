-- wrong: SHUFFLE_HASH names a table the query does not have
-- expect: SHUFFLE
-- expect: zz
SELECT /*+ SHUFFLE_HASH(zz) */ count(*) FROM tpch.sf0_01.nation n;
