-- wrong: a tpch scale that is not a scale
-- expect: huge
SELECT * FROM tpch.huge.nation;
