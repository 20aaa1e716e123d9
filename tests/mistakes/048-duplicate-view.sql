-- wrong: a view created twice
-- expect: statement 2 at line 2
-- expect: v
CREATE VIEW v AS SELECT 1 AS a;
CREATE VIEW v AS SELECT 2 AS a;
