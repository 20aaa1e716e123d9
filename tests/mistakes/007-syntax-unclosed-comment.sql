-- wrong: a block comment is never closed
-- expect: comment
SELECT 1 /* never closed
