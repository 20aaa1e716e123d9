-- wrong: the CSV file does not exist
-- expect: no_such.csv
CREATE EXTERNAL TABLE t (a INT) STORED AS CSV LOCATION '$DATA/no_such.csv';
SELECT * FROM t;
