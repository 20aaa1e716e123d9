-- wrong: BIGINT max plus one
-- expect: overflow
-- expect: minispark.sql.ansi.enabled
SELECT 9223372036854775807 + 1;
