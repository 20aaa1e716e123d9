-- wrong: an integer modulo by a zero column
-- expect: not retried
SELECT n_nationkey % (n_regionkey * 0) FROM tpch.sf0_01.nation;
