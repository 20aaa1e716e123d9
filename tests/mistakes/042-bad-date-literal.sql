-- wrong: a DATE literal that is not a date
-- expect: 2024-13-45
SELECT DATE '2024-13-45';
