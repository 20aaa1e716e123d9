-- wrong: task.maxFailures set to 0
-- expect: minispark.task.maxFailures
SET minispark.task.maxFailures = 0;
