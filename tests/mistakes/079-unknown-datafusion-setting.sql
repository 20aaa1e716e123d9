-- wrong: a datafusion setting that does not exist
-- expect: no_such
SET datafusion.execution.no_such = 1;
