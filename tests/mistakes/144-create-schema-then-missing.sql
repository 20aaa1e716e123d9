-- wrong: a table in a schema that does not exist
-- expect: nosuchschema
CREATE EXTERNAL TABLE nosuchschema.t STORED AS PARQUET LOCATION '$DATA/good/';
