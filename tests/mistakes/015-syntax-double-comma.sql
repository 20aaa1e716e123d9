-- wrong: two commas between columns
-- expect: Line: 1
SELECT n_name,, n_regionkey
FROM tpch.sf0_01.nation;
