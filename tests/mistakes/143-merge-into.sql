-- wrong: MERGE INTO is not supported
-- expect: MERGE
MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE;
