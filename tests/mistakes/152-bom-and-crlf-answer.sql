-- wrong: a job file with a UTF-8 byte-order mark and CRLF line ends: accepted
-- exit: 0
-- stdout: 42
-- encoding: bom crlf
SELECT 41 + 1 AS answer;
SELECT 2 AS two;
