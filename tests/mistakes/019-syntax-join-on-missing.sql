-- wrong: JOIN ... ON with no condition
-- expect: Line: 1
SELECT * FROM tpch.sf0_01.nation a JOIN tpch.sf0_01.nation b ON;
