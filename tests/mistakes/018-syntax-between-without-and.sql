-- wrong: BETWEEN without AND
-- expect: AND
SELECT * FROM tpch.sf0_01.nation WHERE n_regionkey BETWEEN 1;
