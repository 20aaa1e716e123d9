-- wrong: a bad hint in statement 2
-- expect: statement 2 at line 2
-- expect: nope
SELECT 1;
SELECT /*+ BROADCAST(nope) */ count(*) FROM tpch.sf0_01.nation n;
