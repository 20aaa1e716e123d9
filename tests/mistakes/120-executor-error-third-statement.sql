-- wrong: an executor error in statement 3
-- expect: statement 3 at line 3
-- expect: SELECT CAST(n_comment AS DOUBLE)
-- expect: not retried
SET minispark.shuffle.partitions = 2;
SELECT 1;
SELECT CAST(n_comment AS DOUBLE) FROM tpch.sf0_01.nation;
