-- wrong: UPDATE: minispark tables are read-only files
-- expect: UPDATE
UPDATE t SET a = 1;
