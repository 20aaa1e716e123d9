-- wrong: a window function without OVER
-- expect: row_number
SELECT row_number() FROM tpch.sf0_01.nation;
