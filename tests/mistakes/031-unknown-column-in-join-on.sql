-- wrong: an unknown column in a join condition
-- expect: regionkey
SELECT * FROM tpch.sf0_01.nation n JOIN tpch.sf0_01.region r ON n.n_regionkey = r.regionkey;
