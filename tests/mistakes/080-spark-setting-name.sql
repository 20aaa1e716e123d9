-- wrong: Spark's name for a setting
-- expect: spark.sql.shuffle.partitions
SET spark.sql.shuffle.partitions = 4;
