-- wrong: overflow in statement 2
-- expect: overflow
-- expect: statement 2 at line 2
SELECT 1;
SELECT n_nationkey * 9223372036854775807 FROM tpch.sf0_01.nation;
