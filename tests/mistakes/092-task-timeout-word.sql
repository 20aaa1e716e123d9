-- wrong: task.timeout not a duration
-- expect: minispark.task.timeout
SET minispark.task.timeout = forever;
