//! The sink of a write to a Delta table: DataFusion's Parquet sink for the
//! table folder, marked with the [`DeltaWrite`] the driver commits.
//!
//! [`crate::DeltaTable`]'s `insert_into` returns a `DataSinkExec` over a
//! [`DeltaSink`]. minispark's planner (`minispark_planner::write`) turns
//! it into its distributed write operator: every task writes Parquet files
//! with the inner [`ParquetSink`]'s settings (hive-style `col=value/`
//! folders for the partition columns), and the driver's Delta committer
//! records them in the log. The sink itself never writes: run outside a
//! minispark cluster it fails, naming why.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::{Result, not_impl_err};
use datafusion::datasource::file_format::parquet::ParquetSink;
use datafusion::datasource::sink::DataSink;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};

use crate::commit::{DeltaWrite, WriteMode};

/// See the module docs.
#[derive(Debug)]
pub struct DeltaSink {
    parquet: Arc<ParquetSink>,
    write: DeltaWrite,
}

impl DeltaSink {
    pub fn new(parquet: ParquetSink, write: DeltaWrite) -> Self {
        Self {
            parquet: Arc::new(parquet),
            write,
        }
    }

    /// The Parquet sink the tasks write with.
    pub fn parquet(&self) -> &ParquetSink {
        &self.parquet
    }

    /// What the driver commits.
    pub fn write(&self) -> &DeltaWrite {
        &self.write
    }
}

/// `append to 't' as version 4`: how plans show a Delta write.
pub fn describe(write: &DeltaWrite) -> String {
    let mode = match write.mode {
        WriteMode::Append => "append to",
        WriteMode::Overwrite => "overwrite of",
    };
    let new = if write.new_table.is_some() {
        " (a new table)"
    } else {
        ""
    };
    format!(
        "Delta {mode} '{}' as version {}{new}",
        write.location,
        write.commit_version()
    )
}

impl DisplayAs for DeltaSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "DeltaSink: {}", describe(&self.write))
    }
}

#[async_trait::async_trait]
impl DataSink for DeltaSink {
    fn schema(&self) -> &SchemaRef {
        self.parquet.schema()
    }

    async fn write_all(
        &self,
        _data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        not_impl_err!(
            "a write to Delta table '{}' runs on a minispark cluster (its executors write the \
             files, its driver commits the log); it cannot run in a plain DataFusion session",
            self.write.location
        )
    }
}
