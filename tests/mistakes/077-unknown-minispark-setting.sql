-- wrong: a minispark setting that does not exist
-- expect: minispark.no_such_setting
SET minispark.no_such_setting = 1;
