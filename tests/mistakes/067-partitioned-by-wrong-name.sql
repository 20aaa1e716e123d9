-- wrong: PARTITIONED BY a name other than the folders'
-- expect: region
-- expect: r
CREATE EXTERNAL TABLE t STORED AS PARQUET PARTITIONED BY (region) LOCATION '$DATA/part/';
