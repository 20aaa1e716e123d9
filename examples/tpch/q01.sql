-- TPC-H Q1 (pricing summary report) on the built-in TPC-H catalog.
-- `tpch.sf0_1.lineitem` needs no files: each scan task generates its own
-- slice of the table with tpchgen, so this runs on a fresh clone:
--
--   cargo run --release -- submit examples/tpch/q01.sql
--
-- SQLBench-H query 1 derived from TPC-H query 1 under the terms of the TPC Fair Use Policy.
-- TPC-H queries are Copyright 1993-2022 Transaction Processing Performance Council.

-- Four shuffle partitions: the aggregation is split across executors.
SET minispark.shuffle.partitions = 4;

-- The stage graph: a scan + partial aggregate stage, a hash shuffle on the
-- group keys, the final aggregate, and a merge of the sorted partitions.
EXPLAIN
SELECT l_returnflag, l_linestatus, count(*) AS count_order
FROM tpch.sf0_1.lineitem
GROUP BY l_returnflag, l_linestatus
ORDER BY l_returnflag, l_linestatus;

select
	l_returnflag,
	l_linestatus,
	sum(l_quantity) as sum_qty,
	sum(l_extendedprice) as sum_base_price,
	sum(l_extendedprice * (1 - l_discount)) as sum_disc_price,
	sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) as sum_charge,
	avg(l_quantity) as avg_qty,
	avg(l_extendedprice) as avg_price,
	avg(l_discount) as avg_disc,
	count(*) as count_order
from
	tpch.sf0_1.lineitem
where
	l_shipdate <= date '1998-12-01' - interval '68 days'
group by
	l_returnflag,
	l_linestatus
order by
	l_returnflag,
	l_linestatus;
