-- wrong: the joined table does not exist
-- expect: missing_regions
SELECT * FROM tpch.sf0_01.nation n JOIN missing_regions r ON n.n_regionkey = r.r_regionkey;
