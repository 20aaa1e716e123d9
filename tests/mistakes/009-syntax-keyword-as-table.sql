-- wrong: a reserved word used as a table name
-- expect: select
SELECT * FROM select;
