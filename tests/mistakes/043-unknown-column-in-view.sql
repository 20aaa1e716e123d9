-- wrong: a view whose query names an unknown column
-- expect: n_nope
CREATE VIEW v AS SELECT n_nope FROM tpch.sf0_01.nation;
