//! The scan of an Iceberg table as it runs on the executors: each
//! partition (one task) reads its share of the data files the driver
//! planned, with the `iceberg` crate's Parquet reader (field ids, schema
//! evolution, position and equality deletes, row-group pruning by the
//! predicate), and hands the batches to DataFusion across
//! [`crate::arrow_bridge`].
//!
//! The driver plans (see [`crate::table_provider`]): it reads the table's
//! metadata and manifests once, keeps the files whose partition values and
//! column bounds may match the filters, and deals them into partitions of
//! about equal bytes. The plan codec carries each partition's file tasks
//! (`iceberg`'s `FileScanTask`s, as JSON) to the executors.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, Statistics, internal_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, StatisticsArgs,
};
use futures::{StreamExt, TryStreamExt};
use iceberg::arrow::ArrowReaderBuilder;
use iceberg::scan::FileScanTask;
use iceberg::spec::NameMapping;
use serde::{Deserialize, Serialize};

use crate::arrow_bridge;
use crate::object_store_io::file_io;

/// What the executors need to read their partitions: the planned file
/// tasks, and what the plan shows of the planning.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlannedScan {
    /// The table's location (for EXPLAIN and errors).
    pub location: String,
    /// The snapshot read (`None`: the table has none, it is empty).
    pub snapshot_id: Option<i64>,
    /// Data files of the snapshot, before pruning (from its summary).
    pub snapshot_files: Option<u64>,
    /// The predicate planning pruned with, as Iceberg prints it.
    pub predicate: Option<String>,
    /// The file tasks of each partition (without their name mapping,
    /// which `iceberg` does not serialize: it is `name_mapping`).
    pub partitions: Vec<Vec<FileScanTask>>,
    /// Column names to field ids for data files written without field ids
    /// (the table's `schema.name-mapping.default`).
    pub name_mapping: Option<NameMapping>,
}

impl PlannedScan {
    /// Data files read (a file split into byte ranges counts once).
    pub fn files(&self) -> usize {
        let paths: std::collections::HashSet<&str> = self
            .partitions
            .iter()
            .flatten()
            .map(|t| t.data_file_path.as_str())
            .collect();
        paths.len()
    }

    /// File tasks: files, or byte ranges of them.
    pub fn splits(&self) -> usize {
        self.partitions.iter().map(Vec::len).sum()
    }
}

/// Reads planned Iceberg file tasks; one partition per group of tasks.
#[derive(Debug)]
pub struct IcebergScanExec {
    scan: Arc<PlannedScan>,
    /// The projected columns, in DataFusion's Arrow.
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
    /// The planned files' statistics from the manifests (on the driver
    /// that planned the scan; not sent to executors, which need none).
    statistics: Option<Arc<Statistics>>,
}

impl IcebergScanExec {
    pub fn new(scan: PlannedScan, schema: SchemaRef) -> Self {
        // A plan has at least one partition; an empty table reads none.
        let partitions = scan.partitions.len().max(1);
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            scan: Arc::new(scan),
            schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
            statistics: None,
        }
    }

    /// The scan with the statistics of its files (see
    /// [`crate::statistics`]), which its estimates use from then on.
    pub fn with_statistics(mut self, statistics: Statistics) -> Self {
        self.statistics = Some(Arc::new(statistics));
        self
    }

    pub fn planned(&self) -> &PlannedScan {
        &self.scan
    }

    /// Rows and bytes of the planned files (of a partition, or all).
    fn estimate(&self, partition: Option<usize>) -> Statistics {
        let tasks: Vec<&FileScanTask> = match partition {
            Some(p) => self
                .scan
                .partitions
                .get(p)
                .map(|t| t.iter().collect())
                .unwrap_or_default(),
            None => self.scan.partitions.iter().flatten().collect(),
        };
        let counted = tasks.iter().map(|t| t.record_count).sum::<Option<u64>>();
        if let Some(whole) = &self.statistics {
            return match (partition, counted) {
                (None, _) => whole.as_ref().clone(),
                (Some(_), Some(rows)) => crate::statistics::share(whole, rows),
                (Some(_), None) => Statistics::new_unknown(&self.schema),
            };
        }
        let rows = counted
            .map(|r| Precision::Inexact(r as usize))
            .unwrap_or(Precision::Absent);
        let bytes: u64 = tasks.iter().map(|t| t.length).sum();
        Statistics::new_unknown(&self.schema)
            .with_num_rows(rows)
            .with_total_byte_size(Precision::Inexact(bytes as usize))
    }
}

impl DisplayAs for IcebergScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let s = &self.scan;
        write!(f, "IcebergScanExec: location={}", s.location)?;
        match s.snapshot_id {
            Some(id) => write!(f, ", snapshot={id}")?,
            None => write!(f, ", snapshot=none (empty table)")?,
        }
        match s.snapshot_files {
            Some(all) => write!(f, ", files={} of {all}", s.files())?,
            None => write!(f, ", files={}", s.files())?,
        }
        if s.splits() > s.files() {
            write!(f, " in {} splits", s.splits())?;
        }
        if let Some(p) = &s.predicate {
            write!(f, ", predicate={p}")?;
        }
        let names: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        write!(f, ", projection=[{}]", names.join(", "))
    }
}

impl ExecutionPlan for IcebergScanExec {
    fn name(&self) -> &str {
        "IcebergScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !children.is_empty() {
            return internal_err!("IcebergScanExec is a leaf and takes no children");
        }
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let count = self.properties.partitioning.partition_count();
        if partition >= count {
            return internal_err!(
                "IcebergScanExec: invalid partition {partition}, the scan has {count}"
            );
        }
        let mut tasks = self
            .scan
            .partitions
            .get(partition)
            .cloned()
            .unwrap_or_default();
        let mapping = self.scan.name_mapping.clone().map(Arc::new);
        for task in &mut tasks {
            task.name_mapping = mapping.clone();
        }
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let schema = Arc::clone(&self.schema);
        let location = self.scan.location.clone();
        let io = file_io(Arc::clone(&context.runtime_env().object_store_registry));
        let runtime =
            iceberg::Runtime::try_current().map_err(|e| DataFusionError::External(Box::new(e)))?;
        let reader = ArrowReaderBuilder::new(io, runtime)
            .with_batch_size(context.session_config().batch_size())
            // One file at a time: the task is one of the executor's slots.
            .with_data_file_concurrency_limit(1)
            .build();
        let read_error = move |e: iceberg::Error| {
            DataFusionError::External(
                format!("reading Iceberg table '{location}': {}", chain(&e)).into(),
            )
        };
        let stream = reader
            .read(futures::stream::iter(tasks.into_iter().map(Ok)).boxed())
            .map_err(read_error.clone())?
            .stream();
        let target = Arc::clone(&schema);
        let batches = stream.map_err(read_error).and_then(move |batch| {
            let converted = arrow_bridge::batch(batch)
                .and_then(|b| arrow_bridge::conform(b, &target))
                .map_err(DataFusionError::from);
            if let Ok(b) = &converted {
                baseline.record_output(b.num_rows());
            }
            futures::future::ready(converted)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        Ok(Arc::new(self.estimate(args.partition())))
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Arc<Statistics>> {
        Ok(Arc::new(self.estimate(partition)))
    }
}

/// An `iceberg` error with its causes, on one line.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}
