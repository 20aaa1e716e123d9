-- wrong: driver.maxResultSize not a size
-- expect: minispark.driver.maxResultSize
SET minispark.driver.maxResultSize = plenty;
