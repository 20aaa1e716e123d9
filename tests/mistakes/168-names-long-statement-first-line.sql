-- wrong: a long statement: only its first line is shown
-- expect: statement 2 at line 2
-- expect: SELECT n_name,
-- expect: n_nope
SELECT 1;
SELECT n_name,
       n_nope,
       n_regionkey
FROM tpch.sf0_01.nation;
