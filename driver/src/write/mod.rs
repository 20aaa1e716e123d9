//! Distributed writes, the driver half of Spark's file commit protocol.
//!
//! `COPY (query) TO 'dir'` and `INSERT INTO <external table>` run as one
//! job whose result stage writes: every task writes its partition's rows
//! into its own staging folder and returns what it wrote
//! (`minispark_planner::write`). Once every task succeeded the driver
//! commits the job once, with exactly one attempt's files per partition;
//! a job that fails or is cancelled commits nothing and its staging
//! folder is removed.
//!
//! * [`job_committer`]: the extension point: [`JobCommitter`] (what the
//!   driver does with the written files at job commit and abort), the
//!   [`WriteJob`] it commits, and [`job_committer::run_write`] (where the
//!   driver calls it).
//! * [`file_output_committer`]: the plain-files committer (Spark's
//!   `FileOutputCommitter`): files renamed into place, staging removed
//!   (Spark's `_SUCCESS` marker is off, see there). A table format (Delta
//!   Lake, Iceberg) commits the same
//!   [`minispark_planner::write::WrittenFile`]s as a log entry instead.
//! * [`delta_log_committer`]: Delta Lake's commit: files moved into the
//!   table folder, then one `_delta_log/<version>.json` entry written
//!   with put-if-absent (a concurrent commit fails the job, nothing stays).
//! * [`iceberg_committer`]: an Iceberg append, committed as one new
//!   snapshot of the table.

pub mod delta_log_committer;
pub mod file_output_committer;
pub mod iceberg_committer;
pub mod job_committer;

pub use delta_log_committer::DeltaLogCommitter;
pub use file_output_committer::FileOutputCommitter;
pub use iceberg_committer::IcebergCommitter;
pub use job_committer::{CommitSummary, JobCommitter, WriteJob, committer_for, write_of};
