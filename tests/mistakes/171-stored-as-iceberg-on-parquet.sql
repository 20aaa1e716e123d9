-- wrong: STORED AS ICEBERG over a folder of plain Parquet files (no Iceberg metadata)
-- expect: not an Iceberg table
-- expect: metadata
CREATE EXTERNAL TABLE t STORED AS ICEBERG LOCATION '$DATA/good/';
