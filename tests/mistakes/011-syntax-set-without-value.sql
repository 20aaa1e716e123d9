-- wrong: SET without a value
-- expect: value
SET minispark.shuffle.partitions =;
