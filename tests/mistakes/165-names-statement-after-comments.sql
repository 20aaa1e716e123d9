-- wrong: comments before the failing statement
-- expect: statement 2 at line 6
-- expect: nowhere
-- a comment
/* block
 comment */
SELECT 1;
-- another
SELECT * FROM nowhere;
