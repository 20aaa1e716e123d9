-- wrong: COPY ... PARTITIONED BY a column the query does not have
-- expect: b
COPY (SELECT 1 AS a) TO '$OUT/x/' STORED AS PARQUET PARTITIONED BY (b);
