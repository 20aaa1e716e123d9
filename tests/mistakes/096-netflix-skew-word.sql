-- wrong: netflix.skew not a number
-- expect: minispark.netflix.skew
SET minispark.netflix.skew = high;
