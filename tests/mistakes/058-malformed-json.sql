-- wrong: a JSON file with a broken line
-- expect: broken.json
CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '$DATA/broken.json';
SELECT * FROM t;
