//! Delta Lake tables, read distributed with time travel.
//!
//! ```text
//!  driver: CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '...'
//!          -> _delta_log/ replayed (log.rs) -> schema (schema.rs)
//!  query:  scan -> log replayed at the version -> files pruned by partition
//!          values and min/max statistics -> one file group per task ->
//!          DataFusion's Parquet DataSourceExec with partition values (table.rs)
//!  executors: the Parquet scan, decoded by datafusion-proto like any other
//! ```
//!
//! The driver reads the log; executors read only data files, through the
//! session's object stores (local paths, `s3://`, `gs://`, `az://`,
//! `http(s)://` as built by `minispark-storage`), so a Delta scan needs no
//! codec of its own.
//!
//! What is supported, and what is refused with an error naming it:
//!
//! * reader protocol versions 1, 2 and 3; reader features `timestampNtz`
//!   and `vacuumProtocolCheck`. `columnMapping` only with mapping mode
//!   `none`, `deletionVectors` only while no live file has one: tables
//!   with column mapping or deletion vectors are refused, as are the
//!   other reader features (`typeWidening`, `variantType`,
//!   `v2Checkpoint`, ...);
//! * JSON commits, and classic Parquet checkpoints (single-file and
//!   multi-part) when the commits before them were cleaned up; V2
//!   (UUID-named) checkpoints and log compaction files are not read;
//! * time travel to a version, or to the newest version committed at or
//!   before a timestamp (a commit's time is its log file's modification
//!   time; in-commit timestamps are not read);
//! * types: every primitive (decimals, dates, timestamps with and without
//!   time zone), structs, arrays and maps;
//! * file skipping: partition values (exact), and the log's min/max/null
//!   counts of integer and date columns.
//!
//!
//! Writes (`INSERT INTO`, `INSERT OVERWRITE`, minispark's
//! `DataFrame::write_delta`), distributed:
//!
//! ```text
//!  driver:    DeltaTable::insert_into -> DataSinkExec(DeltaSink: a Parquet
//!             sink for the table folder + the DeltaWrite to commit)  (sink.rs)
//!             -> minispark's planner: one write task per partition
//!  executors: Parquet files into a staging folder, `col=value/` folders
//!             for the partition columns
//!  driver:    files moved into the table folder, one log entry written
//!             with put-if-absent: add (and remove, for an overwrite)
//!             actions, protocol and metaData for a new table  (commit.rs)
//! ```
//!
//! What writes do not do: dynamic partition overwrite (an overwrite
//! replaces the whole table), retry after a concurrent commit (the write
//! fails with a "concurrent commit" error and commits nothing), null
//! partition values, column statistics beyond `numRecords`, writer
//! features other than `appendOnly` and `timestampNtz`, schema evolution
//! (an append's columns must be the table's), checkpoints.

pub mod commit;
pub mod factory;
pub mod log;
pub mod schema;
pub mod sink;
pub mod table;

pub use commit::{DeltaWrite, WriteMode};
pub use factory::{DeltaTableFactory, parse_timestamp, time_travel};
pub use log::TimeTravel;
pub use sink::DeltaSink;
pub use table::DeltaTable;

/// The `STORED AS` name of Delta tables (DataFusion's table factories are
/// keyed in upper case).
pub const STORED_AS: &str = "DELTA";
