-- wrong: COPY into a path under a regular file
-- expect: afile.txt
-- expect: COPY
COPY (SELECT 1 AS a) TO '$DATA/afile.txt/out/' STORED AS PARQUET;
