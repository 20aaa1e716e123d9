-- wrong: an integer division by a zero column
-- expect: Divide by zero
-- expect: not retried
SELECT n_nationkey / (n_regionkey - n_regionkey) FROM tpch.sf0_01.nation;
