-- wrong: an invalid regular expression applied to a column
-- expect: unclosed
SELECT regexp_like(n_name, '[unclosed') FROM tpch.sf0_01.nation;
