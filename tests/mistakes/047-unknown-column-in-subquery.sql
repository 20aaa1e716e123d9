-- wrong: an unknown column inside a subquery
-- expect: r_nope
SELECT * FROM tpch.sf0_01.nation WHERE n_regionkey IN (SELECT r_nope FROM tpch.sf0_01.region);
