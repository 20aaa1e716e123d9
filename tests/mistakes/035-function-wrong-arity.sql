-- wrong: abs with two arguments
-- expect: abs
SELECT abs(1, 2);
