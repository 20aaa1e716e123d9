-- wrong: speculation.quantile above 1
-- expect: minispark.speculation.quantile
SET minispark.speculation.quantile = 2;
