-- wrong: an IN list never closed
-- expect: Line: 1
SELECT * FROM tpch.sf0_01.nation WHERE n_regionkey IN (1, 2;
