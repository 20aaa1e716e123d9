-- wrong: a function applied to text that is not a number
-- expect: not retried
SELECT sqrt(CAST(n_name AS DOUBLE)) FROM tpch.sf0_01.nation;
