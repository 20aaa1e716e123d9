-- wrong: the fourth of five statements fails
-- expect: statement 4 at line 4
-- expect: SELECT missing_col
-- expect: missing_col
SELECT 1;
SELECT 2;
SELECT 3;
SELECT missing_col
  FROM tpch.sf0_01.nation;
SELECT 5;
