-- wrong: a folder location that is a text file
-- expect: afile.txt
CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '$DATA/afile.txt';
SELECT * FROM t;
