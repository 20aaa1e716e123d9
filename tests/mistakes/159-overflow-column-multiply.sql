-- wrong: BIGINT multiplication overflow
-- expect: overflow
SELECT n_nationkey * 922337203685477580 FROM tpch.sf0_01.nation;
