//! Distributed writes, the task side of Spark's file commit protocol
//! (`FileCommitProtocol` / `HadoopMapReduceCommitProtocol`).
//!
//! * [`file_write_exec`]: the operator each task of the result stage runs:
//!   it writes its partition's rows into its own staging folder and
//!   returns what it wrote; [`file_write_exec::distribute_write`] puts it
//!   in place of DataFusion's one-task `DataSinkExec`.
//! * [`written_file`]: the description of one written file (path, size,
//!   rows, partition values) the driver's job commit receives.
//! * [`staging`]: the staging layout and Spark's file names.
//!
//! The driver half (job commit and abort) lives in the driver crate's
//! `write` module.

pub mod file_write_exec;
pub mod staging;
pub mod written_file;

pub use file_write_exec::{
    CommitTarget, FileWriteExec, WriteFormat, distribute_write, rows_written,
};
pub use written_file::WrittenFile;
