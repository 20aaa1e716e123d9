-- wrong: a CSV declared with fewer columns than it has
-- expect: incorrect number of fields
-- expect: not retried
CREATE EXTERNAL TABLE t (n VARCHAR) STORED AS CSV LOCATION '$DATA/nums.csv' OPTIONS ('format.has_header' 'true');
SELECT * FROM t;
