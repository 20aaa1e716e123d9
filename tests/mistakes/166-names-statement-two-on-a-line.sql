-- wrong: two statements on one line, the second fails
-- expect: statement 2 at line 1
-- expect: nowhere
SELECT 1; SELECT * FROM nowhere;
