-- wrong: WHERE written twice
-- expect: WHERE
-- expect: Line: 1
SELECT * FROM tpch.sf0_01.nation WHERE n_regionkey = 1 WHERE n_nationkey = 2;
