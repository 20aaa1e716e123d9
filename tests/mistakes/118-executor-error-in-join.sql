-- wrong: a cast error inside a joined query
-- expect: AFRICA
-- expect: not retried
SELECT CAST(r.r_name AS INT) FROM tpch.sf0_01.nation n JOIN tpch.sf0_01.region r ON n.n_regionkey = r.r_regionkey;
