//! An Iceberg scan node in a stage plan: its planned file tasks travel to
//! the executors as JSON (`iceberg`'s `FileScanTask` is serde-serializable),
//! beside the scan's Arrow schema, which the plan codec encodes.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use datafusion::physical_plan::ExecutionPlan;

use crate::scan::{IcebergScanExec, PlannedScan};

/// The schema and planned tasks of `node`, if it is an Iceberg scan.
pub fn encode_scan(node: &dyn ExecutionPlan) -> Option<Result<(SchemaRef, Vec<u8>)>> {
    let scan = node.downcast_ref::<IcebergScanExec>()?;
    Some(
        serde_json::to_vec(scan.planned())
            .map(|bytes| (scan.schema(), bytes))
            .map_err(|e| {
                DataFusionError::Internal(format!("encoding an Iceberg scan's file tasks: {e}"))
            }),
    )
}

/// The Iceberg scan of `schema` reading the tasks in `planned` (JSON).
pub fn decode_scan(schema: SchemaRef, planned: &[u8]) -> Result<Arc<dyn ExecutionPlan>> {
    let planned: PlannedScan = serde_json::from_slice(planned).map_err(|e| {
        DataFusionError::Plan(format!("an Iceberg scan's file tasks do not decode: {e}"))
    })?;
    Ok(Arc::new(IcebergScanExec::new(planned, schema)))
}
