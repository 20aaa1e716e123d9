-- wrong: the column does not exist
-- expect: no_such_column
-- expect: n_name
SELECT no_such_column FROM tpch.sf0_01.nation;
