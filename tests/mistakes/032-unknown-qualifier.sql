-- wrong: a column qualified by an alias that does not exist
-- expect: x.n_name
SELECT x.n_name FROM tpch.sf0_01.nation n;
