-- wrong: a parenthesis is never closed
-- expect: Line: 1
SELECT (1 + 2;
