-- wrong: USE a database
-- expect: USE
USE sales;
