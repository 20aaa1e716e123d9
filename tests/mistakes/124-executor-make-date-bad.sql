-- wrong: make_date with a month of 13 and more
-- expect: not retried
SELECT make_date(2024, n_nationkey + 13, 1) FROM tpch.sf0_01.nation;
