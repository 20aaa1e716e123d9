-- wrong: BOM and CRLF, with a syntax error on line 3
-- expect: Line: 3, Column: 1
-- encoding: bom crlf
SELECT 1;
SELECT 2;
SELEC 3;
