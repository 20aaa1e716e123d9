-- wrong: a netflix scale that is not a scale
-- expect: bogus
SELECT * FROM netflix.bogus.users;
