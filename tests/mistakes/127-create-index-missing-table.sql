-- wrong: CREATE INDEX on a table that does not exist
-- expect: CREATE INDEX
-- expect: not supported
CREATE INDEX i ON t (k);
