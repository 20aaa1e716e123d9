-- wrong: shuffle misspelled
-- expect: minispark.shufle.partitions
SET minispark.shufle.partitions = 4;
