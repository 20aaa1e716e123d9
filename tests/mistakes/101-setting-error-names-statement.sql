-- wrong: a bad setting in the third statement
-- expect: statement 3 at line 3
-- expect: minispark.shuffle.partitions
SELECT 1;
SELECT 2;
SET minispark.shuffle.partitions = lots;
