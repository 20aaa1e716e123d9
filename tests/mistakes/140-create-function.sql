-- wrong: CREATE FUNCTION is not supported
-- expect: FUNCTION
CREATE FUNCTION f(a INT) RETURNS INT RETURN a + 1;
