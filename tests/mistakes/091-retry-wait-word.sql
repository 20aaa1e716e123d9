-- wrong: shuffle.io.retryWait not a duration
-- expect: minispark.shuffle.io.retryWait
-- expect: soon
SET minispark.shuffle.io.retryWait = soon;
