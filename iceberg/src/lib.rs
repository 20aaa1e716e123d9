//! Apache Iceberg tables in minispark: planned on the driver from the
//! table's metadata, read by the executors; appended to by the executors
//! and committed once by the driver.
//!
//! ```text
//!   driver                                   executors
//!   ──────                                   ─────────
//!   metadata.json ─▶ manifests ─▶ files      IcebergScanExec (partition p)
//!   (table_location)  pruned by filters ──▶  iceberg's Parquet reader
//!                     (predicate)            ─▶ Arrow 58 ─▶ C Data ─▶ Arrow 59
//!                     dealt into tasks         (arrow_bridge)
//!                     (table_provider)
//! ```
//!
//! * [`table_provider`]: the table (`STORED AS ICEBERG`, time travel by
//!   `snapshot-id` / `as-of-timestamp`), scan planning.
//! * [`table_location`]: the current metadata file of a table folder.
//! * [`predicate`]: DataFusion filters as Iceberg predicates (pruning).
//! * [`statistics`]: the manifests' metrics of the planned files, as the
//!   scan's statistics (join selection, filter estimates).
//! * [`scan`]: the executor side, reading planned file tasks.
//! * [`arrow_bridge`]: Arrow 58 batches as Arrow 59 ones.
//! * [`object_store_io`]: `iceberg`'s file I/O over DataFusion's object
//!   stores (local, S3, GCS, Azure, HTTP).
//! * [`codec`]: the scan node in a serialized stage plan.
//!
//! Writes (appends: `INSERT INTO`, `DataFrame::write_iceberg`):
//!
//! ```text
//!   driver: insert_into ─▶ IcebergSink (sink)          executors: FileWriteExec
//!             (rows cast to the file schema, hidden        (minispark_planner::write)
//!              partition columns)                          Parquet data files with
//!                                                          field ids, staged per attempt
//!   driver: job commit ─▶ fast_append: DataFiles (footer metrics), one snapshot
//!             ─▶ folder_catalog: put-if-absent of metadata/v<N+1>.metadata.json
//! ```
//!
//! * [`sink`]: the append's plan and the [`IcebergSink`] marking it.
//! * [`fast_append`]: the driver's commit of the written files.
//! * [`folder_catalog`]: the table's folder as its catalog (commits
//!   without a catalog service; creating a table).
//! * [`partition_spec`]: a new table's partitioning in Spark SQL's words
//!   (`days(event_ts)`).
//! * [`snapshots`]: a table's snapshots, as Spark's `snapshots` metadata
//!   table lists them.
//!
//! Only appends: `iceberg` 0.10's transactions commit no overwrite or
//! delete, so `INSERT OVERWRITE` is refused.
//!
//! The `iceberg` crate (0.10) is on Arrow 58 while DataFusion 55 is on
//! Arrow 59, so its DataFusion integration cannot be used: this crate is
//! minispark's own, on `iceberg`'s metadata, scan planning and reader.
//!
//! Supported: format versions 1 and 2, partitioned tables (partition
//! pruning by identity and transform partitions), schema evolution by field
//! id, position and equality deletes (applied by `iceberg`'s reader), and
//! name mapping for files without field ids. Not carried to the executors:
//! partition values of files that do not hold their partition columns
//! (tables migrated from Hive), which read as NULL.

pub mod arrow_bridge;
pub mod codec;
pub mod fast_append;
pub mod folder_catalog;
pub mod object_store_io;
pub mod partition_spec;
pub mod predicate;
pub mod scan;
pub mod sink;
pub mod snapshots;
pub mod statistics;
pub mod table_location;
pub mod table_provider;

pub use sink::{IcebergAppend, IcebergSink};
pub use table_provider::{IcebergTable, IcebergTableFactory, SnapshotChoice};
