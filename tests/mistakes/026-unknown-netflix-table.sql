-- wrong: a netflix table that does not exist
-- expect: subscribers
SELECT * FROM netflix.tiny.subscribers;
