-- wrong: a view over a table that does not exist
-- expect: missing_base
CREATE VIEW v AS SELECT * FROM missing_base;
