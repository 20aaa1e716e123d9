-- wrong: COPY ... STORED AS a format that does not exist
-- expect: FOOBAR
COPY (SELECT 1 AS a) TO '$OUT/x/' STORED AS FOOBAR;
