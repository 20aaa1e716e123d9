-- wrong: a recursive CTE in statement 2
-- expect: recursive
-- expect: statement 2 at line 2
SELECT 1;
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r;
