-- wrong: an unknown column in WHERE
-- expect: n_region
SELECT n_name FROM tpch.sf0_01.nation WHERE n_region = 1;
