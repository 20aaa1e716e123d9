-- wrong: an unknown column in GROUP BY
-- expect: region
SELECT count(*) FROM tpch.sf0_01.nation GROUP BY region;
