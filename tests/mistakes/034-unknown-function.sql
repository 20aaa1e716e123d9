-- wrong: a function that does not exist
-- expect: no_such_function
SELECT no_such_function(1);
