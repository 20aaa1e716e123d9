-- wrong: a column neither grouped nor aggregated
-- expect: n_name
SELECT n_name, count(*) FROM tpch.sf0_01.nation GROUP BY n_regionkey;
