-- wrong: a CSV column declared INT holds text
-- expect: not-a-number
CREATE EXTERNAL TABLE t (n INT, s VARCHAR) STORED AS CSV LOCATION '$DATA/nums.csv' OPTIONS ('format.has_header' 'true');
SELECT sum(n) FROM t;
