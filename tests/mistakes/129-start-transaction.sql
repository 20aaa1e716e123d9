-- wrong: START TRANSACTION: minispark has no transactions
-- expect: START TRANSACTION
-- expect: transactions
-- expect: statement 1 at line 1
START TRANSACTION;
SELECT 1;
COMMIT;
