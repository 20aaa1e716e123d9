//! minispark's end-to-end tests, in one binary (every test binary links all
//! of DataFusion). Clusters are real: the driver runs in the test process,
//! executors are child processes of the `minispark` binary on loopback (and,
//! in `hosts`, in network namespaces of their own).

mod adaptive;
mod auth;
mod broadcast_cache;
mod cli;
mod common;
mod compare;
mod console_progress;
mod dataframe;
mod delta;
mod delta_writes;
mod distributed_writes;
mod driver_restart;
mod errors;
mod examples;
mod executor_metrics;
mod hostile_inputs;
mod hosts;
mod iceberg;
mod iceberg_writes;
mod job_counters;
mod join_strategies;
mod kill_loop;
mod lost_results;
mod memory;
mod mistakes;
mod network_lab;
mod object_store;
mod process_cluster;
mod processes;
mod readme;
mod repartition;
mod runtime_filter;
mod salting;
mod shuffle;
mod skew;
mod slt;
mod spark_functions;
mod spark_hash;
mod speculation;
mod tpch;
mod web_ui;
mod web_ui_browser;
