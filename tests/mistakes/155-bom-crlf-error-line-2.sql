-- wrong: BOM and CRLF, with an unknown column on line 2
-- expect: nope
-- expect: statement 2 at line 2
-- encoding: bom crlf
SELECT 1;
SELECT nope FROM tpch.sf0_01.nation;
