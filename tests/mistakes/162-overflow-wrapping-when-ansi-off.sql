-- wrong: with minispark.sql.ansi.enabled = false the sum wraps, as asked
-- exit: 0
-- stdout: -9223372036854775808
SET minispark.sql.ansi.enabled = false;
SELECT 9223372036854775807 + 1 AS wrapped;
