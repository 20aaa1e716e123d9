-- wrong: a stray token on line 3, after two good statements
-- expect: Line: 3
SELECT 1;
SELECT 2;
  SELECT 3 4 5;
