-- wrong: sql.ansi.enabled set to strict
-- expect: minispark.sql.ansi.enabled
SET minispark.sql.ansi.enabled = strict;
