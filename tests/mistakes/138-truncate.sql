-- wrong: TRUNCATE is not supported
-- expect: TRUNCATE
TRUNCATE TABLE t;
