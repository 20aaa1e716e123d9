-- wrong: a shuffle codec that does not exist
-- expect: minispark.shuffle.compression
-- expect: gzip
SET minispark.shuffle.compression = gzip;
