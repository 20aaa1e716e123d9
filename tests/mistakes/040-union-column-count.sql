-- wrong: UNION of selects with different column counts
-- expect: UNION
SELECT 1, 2 UNION ALL SELECT 3;
