-- wrong: a view used after it was dropped
-- expect: statement 3 at line 3
-- expect: SELECT * FROM v
-- expect: v
CREATE VIEW v AS SELECT 1 AS a;
DROP VIEW v;
SELECT * FROM v;
