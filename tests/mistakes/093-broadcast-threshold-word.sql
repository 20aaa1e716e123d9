-- wrong: autoBroadcastJoinThreshold not a number
-- expect: minispark.sql.autoBroadcastJoinThreshold
SET minispark.sql.autoBroadcastJoinThreshold = big;
