-- wrong: task.maxFailures set to four billion
-- expect: minispark.task.maxFailures
SET minispark.task.maxFailures = 4000000000;
