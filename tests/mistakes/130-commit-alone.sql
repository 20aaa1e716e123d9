-- wrong: COMMIT with no transaction
-- expect: COMMIT
-- expect: transactions
-- expect: statement 2 at line 2
SELECT 1;
COMMIT;
