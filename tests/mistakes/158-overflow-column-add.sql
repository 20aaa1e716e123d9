-- wrong: BIGINT overflow on an executor
-- expect: overflow
-- expect: not retried
SELECT n_nationkey + 9223372036854775800 FROM tpch.sf0_01.nation;
