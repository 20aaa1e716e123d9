-- wrong: a byte-order mark on the embedded cluster: accepted
-- exit: 0
-- stdout: 42
-- master: local
-- encoding: bom
SELECT 42 AS answer;
