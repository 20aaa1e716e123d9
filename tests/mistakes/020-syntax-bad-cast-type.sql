-- wrong: CAST to a type that does not exist
-- expect: WIDGET
SELECT CAST(n_name AS WIDGET) FROM tpch.sf0_01.nation;
