-- wrong: ROLLBACK: minispark has no transactions
-- expect: ROLLBACK
-- expect: transactions
ROLLBACK;
