-- wrong: skew.salting set to always
-- expect: minispark.skew.salting
-- expect: always
SET minispark.skew.salting = always;
