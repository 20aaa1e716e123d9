-- wrong: ALTER TABLE is not supported
-- expect: ALTER
ALTER TABLE t ADD COLUMN c INT;
