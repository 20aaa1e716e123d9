//! # minispark: a distributed dataframe engine, a mini Spark on DataFusion
//!
//! A driver plans SQL or DataFrame jobs into stages with shuffle boundaries
//! and runs them on executors that exchange Arrow data over gRPC.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> datafusion::common::Result<()> {
//! use minispark::prelude::*;
//!
//! // An embedded cluster of two executors; "http://driver:7077" for a real one.
//! let session = Session::builder().master("local[2]").build().await?;
//!
//! // A built-in, generated data set: no files needed.
//! let events = session.table("netflix.tiny.viewing_events").await?;
//! let titles = session.table("netflix.tiny.titles").await?;
//!
//! // Transformations only build a plan...
//! let top = events
//!     .join(titles, JoinType::Inner, &["title_id"], &["title_id"], None)?
//!     .aggregate(vec![col("title")], vec![count(lit(1)).alias("views")])?
//!     .sort(vec![col("views").sort(false, true), col("title").sort(true, false)])?
//!     .limit(0, Some(3))?;
//!
//! // ...actions run it on the cluster: the stages and their shuffles,
//! println!("{}", top.explain().await?);
//! // and the answer.
//! let batches = top.collect().await?;
//! assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
//! # Ok(())
//! # }
//! ```
//!
//! The same job as SQL, with the command line:
//! `minispark submit job.sql --master local[2]`.
//!
//! ```text
//!   Session / DataFrame      minispark submit job.sql
//!             │                │
//!             ▼                ▼
//!   ┌─────────────┐  LaunchTask   ┌────────────┐   FetchPartition   ┌────────────┐
//!   │   driver    │──────────────▶│ executor 0 │◀──────────────────▶│ executor 1 │
//!   │   planner   │◀──────────────│  tasks     │   Arrow IPC blocks │  tasks     │
//!   └─────────────┘  TaskStatus   └────────────┘                    └────────────┘
//! ```
//!
//! * [`Session`] and [`DataFrame`]: the DataFrame API. A DataFrame is a
//!   DataFusion logical plan; actions (`collect`, `show`, `count`,
//!   `explain`, `write_parquet`) send it to the driver.
//!   [`DataFrame::collect_with_counters`] and [`Session::last_job_counters`]
//!   say what the job did ([`JobCounters`]: attempts, failures, executors
//!   lost, map outputs recomputed, adaptive and salting decisions,
//!   speculative copies, timed-out attempts).
//! * [`prelude`]: the session types plus DataFusion's expression builders.
//! * [`local`]: the embedded cluster behind `local[N]`.
//! * [`client`]: running job scripts (the CLI's `submit`).
//! * [`console_progress`]: `submit`'s live stage progress bars on a terminal.
//! * [`demo`]: `minispark demo shuffle`, a shuffle shown map task by map task
//!   (a GROUP BY, a join, and a `DISTRIBUTE BY` showing where each key went).
//!
//! The crates underneath, in dependency order (each crate's docs are a tour
//! of it):
//! * [`proto`]: the gRPC contract, and the address a process advertises.
//! * [`functions`]: Spark-compatible SQL functions: Murmur3 `hash` and
//!   partition ids, the statistical functions, `salt_pick`.
//! * [`datagen`]: the built-in `tpch` and `netflix` catalogs, generated
//!   inside each task.
//! * [`planner`]: stage cutting, exchange nodes, join strategies and hints,
//!   adaptive execution, salting, settings.
//! * [`storage`]: object stores (`s3://`, `gs://`, `az://`, `http(s)://`)
//!   built per bucket from a session's settings and the environment.
//! * [`executor`]: task runner and shuffle storage.
//! * [`driver`]: cluster registry, scheduler, sessions.
//!
//! # Spark concept → file
//!
//! For readers who know Spark: where each of its ideas lives here.
//!
//! | Spark | minispark |
//! |---|---|
//! | `SparkSession`, `DataFrame` | `src/session.rs`, `src/dataframe.rs` |
//! | `spark-submit`, `local[N]` | `src/client.rs`, `src/local.rs`, `src/bin/minispark.rs` |
//! | `ConsoleProgressBar` (`[Stage 2: 13/16 tasks]`) | `src/console_progress.rs` |
//! | `SQLConf` (`spark.sql.*` settings) | `planner/src/config.rs` |
//! | Catalyst parsing and optimizing | DataFusion; `planner/src/session.rs` sets it up |
//! | Query stages cut at exchanges (`DAGScheduler`'s stages) | `planner/src/stages.rs` |
//! | `ShuffleExchangeExec`, shuffle write / read | `planner/src/exchange/{writer,reader}.rs`, `executor/src/shuffle.rs` |
//! | `HashPartitioning` with Murmur3, `hash()`, `pmod` | `functions/src/hash/spark_murmur3.rs` |
//! | `DISTRIBUTE BY` / `SORT BY` / `CLUSTER BY`, `REPARTITION` hints, `df.repartition` (`RepartitionByExpression`, `ShuffleOrigin`) | `planner/src/repartition/` |
//! | `RangePartitioner` (`REPARTITION_BY_RANGE`, `repartitionByRange`): bounds, partition of a key | `planner/src/exchange/range.rs` |
//! | `RangePartitioner.sketch` (the sampling job) | `planner/src/repartition/range_sample.rs`, `driver/src/range_bounds.rs` |
//! | `ShuffleOrigin` (what AQE may do to a requested shuffle) | `planner/src/repartition/shuffle_origin.rs` |
//! | `spark_partition_id()` (`TaskContext.partitionId`) | `functions/src/spark_partition_id.rs` |
//! | `JoinSelection`: broadcast vs shuffled joins | `planner/src/join_strategy.rs` |
//! | Join hints (`BROADCAST`, `SHUFFLE_HASH`, `MERGE`) | `planner/src/hints.rs` |
//! | Runtime filters (`InjectRuntimeFilter`, semi-join reduction): a join's small side filtering the other side before its shuffle | `planner/src/runtime_filter.rs` |
//! | AQE `CoalesceShufflePartitions` | `planner/src/adaptive/coalesce.rs` |
//! | AQE `OptimizeSkewInRebalancePartitions` | `planner/src/adaptive/rebalance.rs` |
//! | AQE `OptimizeSkewedJoin` | `planner/src/adaptive/skew_join.rs` |
//! | AQE switch to a broadcast join | `planner/src/adaptive/switch_to_broadcast.rs` |
//! | AQE `OptimizeShuffleWithLocalRead` | `planner/src/adaptive/local_shuffle_read.rs` |
//! | A shuffled hash join re-planned as a sort-merge join when its build side would not fit (Spark's sort-merge default) | `planner/src/adaptive/switch_to_sort_merge.rs` |
//! | `spark.executor.memory`, the unified memory manager, spilling | `executor/src/memory.rs` (DataFusion's `FairSpillPool`) |
//! | DataFusion's runtime settings (`datafusion.runtime.*`) in a cluster | `planner/src/runtime_settings.rs` |
//! | Skewed partition (factor × median and threshold) | `planner/src/skew.rs` |
//! | Key salting: the rewrite / when to salt | `planner/src/salting/`, `driver/src/salting/` |
//! | `DAGScheduler` + `TaskScheduler`: stages, tasks, retries | `driver/src/scheduler.rs` |
//! | `MapOutputTracker` | `driver/src/map_output_tracker.rs` |
//! | Standalone master: executors, heartbeats | `driver/src/cluster.rs` |
//! | Speculative execution (`spark.speculation`, `TaskSetManager.checkSpeculatableTasks`) | `driver/src/speculation.rs` |
//! | A task timeout (no Spark equivalent) | `driver/src/task_timeout.rs` |
//! | A standalone worker re-registering with a restarted master | `executor/src/driver_connection.rs` |
//! | `spark.driver.host` / an executor's advertised host (vs. the bind address) | `proto/src/advertised_address.rs` |
//! | `SecurityManager` (`spark.authenticate`, SSL) | `proto/src/security.rs`, `proto/src/auth.rs`, `proto/src/tls.rs` |
//! | A broadcast variable kept once per executor (`TorrentBroadcast` in the `BlockManager`) | `executor/src/broadcast_cache.rs` |
//! | A broadcast join's hash table built once per executor (`HashedRelation`) | `executor/src/broadcast_hash_table.rs` |
//! | `Executor`, `BlockManager` serving shuffle blocks | `executor/src/service.rs`, `executor/src/shuffle.rs` |
//! | Delta Lake tables (`spark.read.format("delta")`, `versionAsOf` / `timestampAsOf`, `STORED AS DELTA`) | `delta/src/` (log replay `log.rs`, scan and file skipping `table.rs`) |
//! | Delta's writer (`WriteIntoDelta`, `OptimisticTransaction.commit`: one log entry, put-if-absent), `DataFrameWriter.mode` (`SaveMode`) | `delta/src/commit.rs`, `delta/src/sink.rs`, `driver/src/write/delta_log_committer.rs`, `src/save_mode.rs` |
//! | Hadoop `FileSystem`s (`s3a://`, `gs://`, `abfs://`) and their `spark.hadoop.fs.*` settings | `storage/src/object_store_registry.rs`, `storage/src/store_settings.rs` |
//! | Iceberg's Spark reader (`SparkScanBuilder` planning files, `snapshot-id` / `as-of-timestamp` time travel) | `iceberg/src/table_provider.rs`, `iceberg/src/scan.rs` |
//! | Iceberg's scan statistics for the planner (`SparkScan.estimateStatistics`) | `iceberg/src/statistics.rs` |
//! | Iceberg's writes: `PARTITIONED BY (days(ts))` on create, appends (`SparkWrite`, `fast_append`), the `snapshots` metadata table | `iceberg/src/partition_spec.rs`, `iceberg/src/sink.rs`, `iceberg/src/fast_append.rs`, `driver/src/write/iceberg_committer.rs`, `iceberg/src/snapshots.rs` |
//! | `InsertIntoHadoopFsRelationCommand` / `FileFormatWriter`: a write run by the tasks (`COPY`, `INSERT INTO`) | `planner/src/write/file_write_exec.rs` |
//! | `FileCommitProtocol` / `HadoopMapReduceCommitProtocol`: staging, job commit and abort | `planner/src/write/staging.rs`, `driver/src/write/job_committer.rs`, `driver/src/write/file_output_committer.rs` |
//! | Task serialization | `planner/src/codec.rs` (physical), `planner/src/logical_codec.rs` (DataFrames) |
//! | `EXPLAIN`, the Spark UI's stage metrics | `planner/src/explain.rs`, `driver/src/job.rs` |
//! | The Spark UI and its REST API (`/api/v1`), `AppStatusStore` fed by `SparkListener` events | `driver/src/ui/`, `driver/src/status_store.rs` |
//! | Event logs (`spark.eventLog.*`) and the history server | `driver/src/event_log.rs`, `driver/src/ui/history.rs` |
//! | `PrometheusServlet` (`/metrics`) of the driver and of each executor | `driver/src/driver_metrics.rs`, `executor/src/executor_metrics.rs` |

pub mod client;
pub mod console_progress;
pub mod dataframe;
pub mod demo;
pub mod local;
pub mod output;
pub mod prelude;
pub mod save_mode;
pub mod session;

pub use dataframe::{DataFrame, JoinStrategy};
pub use minispark_driver::job_counters::JobCounters;
pub use save_mode::SaveMode;
pub use session::{Master, Session, SessionBuilder};

pub use minispark_datagen as datagen;
pub use minispark_delta as delta;
pub use minispark_driver as driver;
pub use minispark_executor as executor;
pub use minispark_functions as functions;
pub use minispark_iceberg as iceberg;
pub use minispark_planner as planner;
pub use minispark_proto as proto;
pub use minispark_storage as storage;
