//! A table's snapshots as rows, as Spark's `<table>.snapshots` metadata
//! table lists them: what a time-travel read picks from.
//!
//! Each commit (an append here) makes a snapshot: the table's files as of
//! that commit. The rows, oldest first:
//!
//! | column | |
//! |---|---|
//! | `committed_at` | the commit's time, `Timestamp(ms, UTC)` |
//! | `snapshot_id` | the id `SnapshotChoice::Id` and `'snapshot-id'` take |
//! | `parent_id` | the snapshot it was made on (NULL for the first) |
//! | `operation` | `append`, `overwrite`, `replace` or `delete` |
//! | `added_records`, `total_records`, `added_data_files`, `total_data_files` | from the snapshot's summary (NULL when its writer left them out) |
//! | `is_current` | whether it is the table's current snapshot |

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::{DataFusionError, Result};
use iceberg::spec::TableMetadata;

/// The schema of [`snapshots`]' rows.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "committed_at",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("snapshot_id", DataType::Int64, false),
        Field::new("parent_id", DataType::Int64, true),
        Field::new("operation", DataType::Utf8, false),
        Field::new("added_records", DataType::Int64, true),
        Field::new("total_records", DataType::Int64, true),
        Field::new("added_data_files", DataType::Int64, true),
        Field::new("total_data_files", DataType::Int64, true),
        Field::new("is_current", DataType::Boolean, false),
    ]))
}

/// One row per snapshot of `metadata`, oldest first (by commit time, then
/// by sequence number).
pub fn snapshots(metadata: &TableMetadata) -> Result<RecordBatch> {
    let mut all: Vec<_> = metadata.snapshots().collect();
    all.sort_by_key(|s| (s.timestamp_ms(), s.sequence_number()));
    let current = metadata.current_snapshot_id();
    let summary = |key: &str| -> Int64Array {
        all.iter()
            .map(|s| {
                s.summary()
                    .additional_properties
                    .get(key)
                    .and_then(|v| v.parse::<i64>().ok())
            })
            .collect()
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMillisecondArray::from(
                all.iter().map(|s| s.timestamp_ms()).collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(Int64Array::from(
            all.iter().map(|s| s.snapshot_id()).collect::<Vec<_>>(),
        )),
        Arc::new(
            all.iter()
                .map(|s| s.parent_snapshot_id())
                .collect::<Int64Array>(),
        ),
        Arc::new(
            all.iter()
                .map(|s| Some(s.summary().operation.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(summary("added-records")),
        Arc::new(summary("total-records")),
        Arc::new(summary("added-data-files")),
        Arc::new(summary("total-data-files")),
        Arc::new(
            all.iter()
                .map(|s| Some(Some(s.snapshot_id()) == current))
                .collect::<BooleanArray>(),
        ),
    ];
    RecordBatch::try_new(schema(), columns)
        .map_err(|e| DataFusionError::Internal(format!("the snapshots of an Iceberg table: {e}")))
}
