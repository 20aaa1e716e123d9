-- wrong: FROM is misspelled FORM
-- expect: FORM
-- expect: Line: 2
SELECT *
FORM tpch.sf0_01.nation;
