-- wrong: BIGINT subtraction overflow
-- expect: overflow
SELECT (0 - 9223372036854775807) - n_nationkey - 2 FROM tpch.sf0_01.nation;
