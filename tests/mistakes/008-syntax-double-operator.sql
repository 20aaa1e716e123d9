-- wrong: two operators in a row
-- expect: Line: 1
SELECT 1 +* 2;
