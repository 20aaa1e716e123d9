-- wrong: CREATE INDEX: minispark has no indexes
-- expect: CREATE INDEX
-- expect: not supported
-- expect: statement 2 at line 2
CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '$DATA/good/';
CREATE INDEX i ON t (k);
