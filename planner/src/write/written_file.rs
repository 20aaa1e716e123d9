//! What a write task wrote: one [`WrittenFile`] per data file, the task's
//! report to the driver's job commit.
//!
//! A write task's result rows are these descriptions (the result stage's
//! output, read back by the driver once every task succeeded), so the
//! driver receives exactly one attempt's files per partition: the attempt
//! whose output the scheduler kept (first commit wins; a retried or
//! speculative duplicate attempt's result is never read, and its staged
//! files are removed with the staging folder).
//!
//! The description is generic on purpose: a plain-files commit moves the
//! file from `staged_path` to `final_path`; a table format (Delta Lake's
//! `add` actions, Iceberg's data files) records the same path, size, row
//! count and partition values in its log instead.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{DataFusionError, Result, internal_datafusion_err};

/// One data file a write task wrote into its staging folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// The task's partition (the `part-00003` of the final name).
    pub partition: usize,
    /// Where the task wrote it: an object-store path (no scheme or bucket),
    /// inside the destination's staging folder.
    pub staged_path: String,
    /// Where the job commit puts it, relative to the destination:
    /// `col=value/part-00003-<job>.c000.parquet`.
    pub final_path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Rows in the file, when known (Parquet: from the footer the writer
    /// produced; CSV and JSON: when the task wrote one file).
    pub rows: Option<u64>,
    /// The `PARTITIONED BY` columns and their values, as spelled in the
    /// file's folder names (`col=value`), outermost first.
    pub partition_values: Vec<(String, String)>,
}

impl WrittenFile {
    /// The schema of the rows a write task returns.
    pub fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("partition", DataType::UInt64, false),
            Field::new("staged_path", DataType::Utf8, false),
            Field::new("final_path", DataType::Utf8, false),
            Field::new("bytes", DataType::UInt64, false),
            Field::new("rows", DataType::UInt64, true),
            // `a=1/b=x`: the folder names, as in the path.
            Field::new("partition_values", DataType::Utf8, false),
        ]))
    }

    /// `files` as rows of [`Self::schema`].
    pub fn to_batch(files: &[WrittenFile]) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(
                files.iter().map(|f| f.partition as u64),
            )),
            Arc::new(StringArray::from_iter_values(
                files.iter().map(|f| f.staged_path.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                files.iter().map(|f| f.final_path.as_str()),
            )),
            Arc::new(UInt64Array::from_iter_values(files.iter().map(|f| f.bytes))),
            Arc::new(UInt64Array::from_iter(files.iter().map(|f| f.rows))),
            Arc::new(StringArray::from_iter_values(
                files.iter().map(|f| partition_dirs(&f.partition_values)),
            )),
        ];
        RecordBatch::try_new(Self::schema(), columns).map_err(DataFusionError::from)
    }

    /// The files described by rows of [`Self::schema`].
    pub fn from_batch(batch: &RecordBatch) -> Result<Vec<WrittenFile>> {
        fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<T>())
                .ok_or_else(|| {
                    internal_datafusion_err!("a write task's result has no column {name}")
                })
        }
        let partition = column::<UInt64Array>(batch, "partition")?;
        let staged = column::<StringArray>(batch, "staged_path")?;
        let final_path = column::<StringArray>(batch, "final_path")?;
        let bytes = column::<UInt64Array>(batch, "bytes")?;
        let rows = column::<UInt64Array>(batch, "rows")?;
        let values = column::<StringArray>(batch, "partition_values")?;
        Ok((0..batch.num_rows())
            .map(|i| WrittenFile {
                partition: partition.value(i) as usize,
                staged_path: staged.value(i).to_string(),
                final_path: final_path.value(i).to_string(),
                bytes: bytes.value(i),
                rows: (!rows.is_null(i)).then(|| rows.value(i)),
                partition_values: parse_partition_dirs(values.value(i)),
            })
            .collect())
    }
}

/// `[("a", "1"), ("b", "x")]` as `a=1/b=x`.
pub fn partition_dirs(values: &[(String, String)]) -> String {
    values
        .iter()
        .map(|(c, v)| format!("{c}={v}"))
        .collect::<Vec<_>>()
        .join("/")
}

/// The `col=value` segments of a relative folder path.
pub fn parse_partition_dirs(dirs: &str) -> Vec<(String, String)> {
    dirs.split('/')
        .filter_map(|segment| segment.split_once('='))
        .map(|(c, v)| (c.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_survive_a_round_trip_through_rows() {
        let files = vec![
            WrittenFile {
                partition: 3,
                staged_path: "out/_minispark_staging/j/task-00003-x/k=1/a.parquet".into(),
                final_path: "k=1/part-00003-j.c000.parquet".into(),
                bytes: 120,
                rows: Some(7),
                partition_values: vec![("k".into(), "1".into())],
            },
            WrittenFile {
                partition: 0,
                staged_path: "out/_minispark_staging/j/task-00000-y/a.csv".into(),
                final_path: "part-00000-j.c000.csv".into(),
                bytes: 0,
                rows: None,
                partition_values: vec![],
            },
        ];
        let batch = WrittenFile::to_batch(&files).unwrap();
        assert_eq!(WrittenFile::from_batch(&batch).unwrap(), files);
    }
}
