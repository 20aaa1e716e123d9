-- wrong: INT overflow
-- expect: overflow
SELECT CAST(n_nationkey AS INT) + CAST(2147483647 AS INT) FROM tpch.sf0_01.nation;
