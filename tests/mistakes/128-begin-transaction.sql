-- wrong: BEGIN: minispark has no transactions
-- expect: BEGIN
-- expect: transactions
BEGIN;
SELECT 1;
