-- wrong: speculation set to maybe
-- expect: minispark.speculation
-- expect: maybe
SET minispark.speculation = maybe;
