-- wrong: datafusion batch_size set to zero
-- expect: datafusion.execution.batch_size
SET datafusion.execution.batch_size = 0;
SELECT count(*) FROM tpch.sf0_01.nation;
