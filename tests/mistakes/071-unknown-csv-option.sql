-- wrong: a CSV option that does not exist
-- expect: no_such_option
CREATE EXTERNAL TABLE t (n VARCHAR) STORED AS CSV LOCATION '$DATA/nums.csv' OPTIONS ('format.no_such_option' 'true');
