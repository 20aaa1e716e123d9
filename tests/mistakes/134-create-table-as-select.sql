-- wrong: CREATE TABLE AS SELECT over a table
-- expect: CREATE TABLE n AS SELECT is not supported
CREATE TABLE n AS SELECT * FROM tpch.sf0_01.nation;
