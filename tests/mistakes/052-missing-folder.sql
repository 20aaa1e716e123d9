-- wrong: the folder does not exist
-- expect: no_such_folder
CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '$DATA/no_such_folder/';
SELECT * FROM t;
