-- wrong: a CSV file declared as Parquet
-- expect: nums.csv
CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '$DATA/nums.csv';
SELECT * FROM t;
