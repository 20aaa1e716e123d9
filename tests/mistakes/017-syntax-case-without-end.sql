-- wrong: CASE without END
-- expect: Line: 1
SELECT CASE WHEN n_regionkey = 1 THEN 'a' FROM tpch.sf0_01.nation;
