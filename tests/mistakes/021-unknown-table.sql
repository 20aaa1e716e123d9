-- wrong: the table does not exist
-- expect: no_such_table
SELECT * FROM no_such_table;
