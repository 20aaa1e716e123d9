-- wrong: datafusion.runtime.memory_limit not a size
-- expect: memory_limit
SET datafusion.runtime.memory_limit = huge;
