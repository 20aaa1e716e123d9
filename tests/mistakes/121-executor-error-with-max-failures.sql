-- wrong: a data error with task.maxFailures = 10 still fails at once
-- expect: not retried
SET minispark.task.maxFailures = 10;
SELECT CAST(n_name AS INT) FROM tpch.sf0_01.nation;
