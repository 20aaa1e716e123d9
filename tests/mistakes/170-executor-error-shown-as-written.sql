-- wrong: a bad cast on an executor: the user reads the statement and the message, with no "External error" label before them
-- expect: error: statement 1 at line 1
-- expect: Cast error
SELECT CAST(n_name AS INT) FROM tpch.sf0_01.nation;
