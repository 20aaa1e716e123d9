-- wrong: SELECT is misspelled on line 2
-- expect: SELEC
-- expect: Line: 2, Column: 1
SELECT 1;
SELEC 2;
