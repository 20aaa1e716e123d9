-- wrong: datafusion batch_size set to four billion
-- expect: datafusion.execution.batch_size
SET datafusion.execution.batch_size = 4000000000;
SELECT count(*) FROM tpch.sf0_01.nation;
