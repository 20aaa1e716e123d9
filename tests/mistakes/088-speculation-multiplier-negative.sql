-- wrong: speculation.multiplier negative
-- expect: minispark.speculation.multiplier
SET minispark.speculation.multiplier = -1;
