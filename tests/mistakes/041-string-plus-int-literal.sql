-- wrong: a string that is not a number added to a number
-- expect: Cannot coerce
SELECT 'abc' + 1;
