-- wrong: DROP TABLE of a table that does not exist
-- expect: never_created
DROP TABLE never_created;
