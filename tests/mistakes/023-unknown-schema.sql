-- wrong: a schema of the tpch catalog that does not exist
-- expect: nations
SELECT * FROM tpch.sf0_01.nations;
