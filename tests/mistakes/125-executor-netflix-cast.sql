-- wrong: a cast error over built-in netflix data
-- expect: not retried
SELECT CAST(title AS INT) FROM netflix.tiny.titles;
