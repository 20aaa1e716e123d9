-- wrong: WITH RECURSIVE: not supported by minispark
-- expect: recursive
-- expect: not supported
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r;
