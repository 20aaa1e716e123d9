-- wrong: reducer.maxSizeInFlight not a size
-- expect: minispark.reducer.maxSizeInFlight
-- expect: lots
SET minispark.reducer.maxSizeInFlight = lots;
