-- wrong: shuffle.partitions set to four billion
-- expect: minispark.shuffle.partitions
-- expect: 100000
SET minispark.shuffle.partitions = 4000000000;
