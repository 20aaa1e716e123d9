-- wrong: GRANT is not supported
-- expect: GRANT
GRANT SELECT ON t TO bob;
