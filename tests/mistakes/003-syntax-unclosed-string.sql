-- wrong: a string literal is never closed
-- expect: Unterminated string
-- expect: Line: 1
SELECT 'abc;
