-- wrong: GROUP without BY
-- expect: GROUP
-- expect: Line: 2
SELECT n_regionkey FROM tpch.sf0_01.nation
GROUP n_regionkey;
