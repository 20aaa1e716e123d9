-- wrong: Spark's CACHE TABLE
-- expect: Line: 1, Column: 31
CACHE TABLE tpch.sf0_01.nation;
