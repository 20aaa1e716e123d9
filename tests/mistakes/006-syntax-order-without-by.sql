-- wrong: ORDER without BY
-- expect: ORDER
-- expect: Line: 1
SELECT n_name FROM tpch.sf0_01.nation ORDER n_name;
