-- wrong: a text that is not a number cast to INT on an executor
-- expect: not-a-number
-- expect: on executor exec-
-- expect: not retried
-- expect: statement 2 at line 2
CREATE EXTERNAL TABLE nums (n VARCHAR, s VARCHAR) STORED AS CSV LOCATION '$DATA/nums.csv' OPTIONS ('format.has_header' 'true');
SELECT CAST(n AS INT) + 1 FROM nums;
