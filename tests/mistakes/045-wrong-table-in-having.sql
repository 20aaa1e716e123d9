-- wrong: HAVING names a column that is not grouped
-- expect: n_name
SELECT n_regionkey, count(*) FROM tpch.sf0_01.nation GROUP BY n_regionkey HAVING n_name = 'x';
