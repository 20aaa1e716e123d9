-- wrong: shuffle.partitions set to a word
-- expect: minispark.shuffle.partitions
-- expect: many
SET minispark.shuffle.partitions = many;
