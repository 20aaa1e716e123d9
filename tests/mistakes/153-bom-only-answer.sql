-- wrong: a job file with a byte-order mark: accepted
-- exit: 0
-- stdout: 42
-- encoding: bom
SELECT 42 AS answer;
