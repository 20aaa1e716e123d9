-- wrong: shuffle.partitions negative
-- expect: minispark.shuffle.partitions
SET minispark.shuffle.partitions = -1;
