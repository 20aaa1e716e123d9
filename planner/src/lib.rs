//! # minispark-planner: from one-machine plans to stages
//!
//! Pure logic, no sockets and no runtime: this crate turns a DataFusion
//! physical plan into a [`stages::StageGraph`] and describes the nodes that
//! move data between stages. The driver and the executors both depend on it.
//!
//! ```text
//!  SQL ──DataFusion──▶ LogicalPlan ──optimize──▶ ExecutionPlan (N partitions)
//!                                                     │ stages::plan_stages
//!                                                     ▼
//!   stage 0: ShuffleWriterExec(hash(k) % N) ◀─ scan        (map side)
//!   stage 1: ShuffleWriterExec(forward) ◀─ agg ◀─ ShuffleReaderExec(stage 0)
//! ```
//!
//! * [`adaptive`]: adaptive execution, choosing a stage's tasks from its
//!   inputs' real sizes; one file per Spark AQE rule.
//! * [`stages`]: where to cut a plan, and the stage graph.
//! * [`ansi_arithmetic`]: Spark's ANSI mode for integer `+`, `-`, `*`
//!   (overflow fails the query; `minispark.sql.ansi.enabled`).
//! * [`exchange`]: shuffle writer and reader nodes, block locations.
//! * [`codec`]: serializing minispark's nodes with datafusion-proto.
//! * [`logical_codec`]: serializing DataFrame plans for a remote driver.
//! * [`hints`]: join strategy hints (broadcast, shuffle, merge), in SQL and DataFrames.
//! * [`repartition`]: Spark's repartitioning: `DISTRIBUTE BY`, `SORT BY`,
//!   `CLUSTER BY`, the `REPARTITION` / `REBALANCE` hints, `df.repartition`.
//! * [`join_strategy`]: broadcast thresholds, and why each join got its strategy.
//! * [`runtime_filter`]: a join's small side filtering its big side's rows
//!   before they are shuffled (Spark's runtime filter, semi-join reduction).
//! * [`functions`] (the `minispark-functions` crate, re-exported): Spark's
//!   Murmur3 `hash` and partition ids, statistical and salting SQL functions.
//! * [`config`]: every `minispark.*` setting, declared once, with its default.
//! * [`skew`]: when a shuffle partition counts as skewed.
//! * [`salting`]: key salting, the planner half: the `SKEW` hint, and
//!   rewriting skewed joins and GROUP BYs to run on (key, salt) (when to
//!   salt is the driver's half).
//! * [`session`]: the DataFusion session every process uses.
//! * [`runtime_settings`]: DataFusion's `datafusion.runtime.*` settings
//!   (memory limit, spill files, caches), carried from a session to its
//!   tasks.
//! * [`ipc`]: Arrow IPC encoding of shuffle blocks.
//! * [`ipc_limits`]: the size checks on IPC data from other processes,
//!   made before anything is allocated for it.
//! * [`explain`]: printing a stage graph.
//! * [`write`]: distributed writes (`COPY ... TO`, `INSERT INTO`): each
//!   task of the result stage writes its own files into a staging folder;
//!   the driver commits them once.
//! * [`user_errors`]: errors in user words, and which errors a retry
//!   cannot cure (they fail a job at once).

pub mod adaptive;
pub mod ansi_arithmetic;
pub mod codec;
pub mod config;
pub mod exchange;
pub mod explain;
pub mod hints;
pub mod ipc;
pub mod ipc_limits;
pub mod join_strategy;
pub mod logical_codec;
pub mod repartition;
pub mod runtime_filter;
pub mod runtime_settings;
pub mod salting;
pub mod session;
pub mod skew;
pub mod stages;
pub mod user_errors;
pub mod write;
