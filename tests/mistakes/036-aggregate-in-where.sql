-- wrong: an aggregate in WHERE
-- expect: Aggregate functions are not allowed in the WHERE clause
SELECT n_regionkey FROM tpch.sf0_01.nation WHERE count(*) > 1;
