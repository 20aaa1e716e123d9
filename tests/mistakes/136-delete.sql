-- wrong: DELETE: minispark tables are read-only files
-- expect: DELETE
DELETE FROM t WHERE a = 1;
