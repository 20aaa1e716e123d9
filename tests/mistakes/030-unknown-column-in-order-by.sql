-- wrong: an unknown column in ORDER BY
-- expect: n_size
SELECT n_name FROM tpch.sf0_01.nation ORDER BY n_size;
