//! The task side of a distributed write: [`FileWriteExec`] writes one
//! partition's rows into the task attempt's own staging folder and returns
//! what it wrote ([`WrittenFile`] rows) as the task's result.
//!
//! DataFusion plans `COPY ... TO 'dir'` and `INSERT INTO <listing table>`
//! as a `DataSinkExec` over all rows merged into one partition: one task
//! writes everything. [`distribute_write`] replaces it by a
//! `FileWriteExec` over the unmerged input, so the result stage has one
//! task per partition, each writing with DataFusion's own format writer
//! (Parquet, CSV, JSON; hive-style `col=value/` folders for
//! `PARTITIONED BY`) into
//! `<dest>/_minispark_staging/<write id>/task-<p>-<token>/`. Nothing is
//! visible in the destination until the driver's job commit moves the
//! files of one attempt per partition into place (see the driver's
//! `write` module).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::{RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::config::TableParquetOptions;
use datafusion::common::file_options::csv_writer::CsvWriterOptions;
use datafusion::common::file_options::json_writer::JsonWriterOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, internal_err};
use datafusion::datasource::file_format::csv::CsvSink;
use datafusion::datasource::file_format::json::JsonSink;
use datafusion::datasource::file_format::parquet::ParquetSink;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::datasource::physical_plan::{FileOutputMode, FileSink, FileSinkConfig};
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::execute_input_stream;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
};
use futures::TryStreamExt;

use minispark_delta::DeltaSink;

use super::commit_target::CommitTarget;
use super::staging::{final_file_name, new_attempt_token, new_write_id, task_staging};
use super::written_file::WrittenFile;

/// The file format a write uses, with its writer options: what
/// DataFusion's sink for it needs besides the [`FileSinkConfig`].
#[derive(Debug, Clone)]
pub enum WriteFormat {
    /// Boxed: Parquet's options are far larger than the others'.
    Parquet(Box<TableParquetOptions>),
    Csv(CsvWriterOptions),
    Json(JsonWriterOptions),
}

impl WriteFormat {
    /// The config and format of one of DataFusion's file sinks; `None` for
    /// other sinks (they keep DataFusion's one-task write).
    pub fn of(sink: &dyn DataSink) -> Option<(FileSinkConfig, WriteFormat)> {
        // An Iceberg append writes its data files with the Parquet sink.
        if let Some(s) = sink.downcast_ref::<minispark_iceberg::IcebergSink>() {
            return Self::of(s.parquet_sink());
        }
        if let Some(s) = sink.downcast_ref::<ParquetSink>() {
            return Some((
                s.config().clone(),
                WriteFormat::Parquet(Box::new(s.parquet_options().clone())),
            ));
        }
        if let Some(s) = sink.downcast_ref::<CsvSink>() {
            return Some((
                s.config().clone(),
                WriteFormat::Csv(s.writer_options().clone()),
            ));
        }
        if let Some(s) = sink.downcast_ref::<JsonSink>() {
            return Some((
                s.config().clone(),
                WriteFormat::Json(s.writer_options().clone()),
            ));
        }
        None
    }

    fn sink(&self, config: FileSinkConfig) -> Arc<dyn DataSink> {
        match self.clone() {
            WriteFormat::Parquet(o) => Arc::new(ParquetSink::new(config, *o)),
            WriteFormat::Csv(o) => Arc::new(CsvSink::new(config, o)),
            WriteFormat::Json(o) => Arc::new(JsonSink::new(config, o)),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            WriteFormat::Parquet(_) => "parquet",
            WriteFormat::Csv(_) => "csv",
            WriteFormat::Json(_) => "json",
        }
    }
}

/// Makes a write run in parallel: a `DataSinkExec` at the root of `plan`
/// writing a folder with one of DataFusion's file formats (COPY to a
/// folder, INSERT INTO an external table) becomes a [`FileWriteExec`] over
/// its input's partitions. Anything else is returned as it is: a write to
/// one file (`COPY ... TO 'out.parquet'`), an overwrite, another kind of
/// sink.
pub fn distribute_write(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    let Some(sink_exec) = plan.downcast_ref::<DataSinkExec>() else {
        return Ok(plan);
    };
    // A sink's order requirement (DataFusion asks for the input's own
    // order, or a table's declared order) holds within each partition: the
    // input below is left as it is, but for a merge to one partition, which
    // keeps no order.
    // A Delta table's sink: its Parquet sink writes, its log is committed
    // by the driver.
    let (sink, target) = match sink_exec.sink().downcast_ref::<DeltaSink>() {
        Some(delta) => (
            delta.parquet() as &dyn DataSink,
            CommitTarget::Delta(delta.write().clone()),
        ),
        None => (sink_exec.sink(), CommitTarget::of(sink_exec.sink())),
    };
    let Some((config, format)) = WriteFormat::of(sink) else {
        return Ok(plan);
    };
    let [dest] = config.table_paths.as_slice() else {
        return Ok(plan);
    };
    if config.insert_op != InsertOp::Append || config.file_output_mode.single_file_output(dest) {
        return Ok(plan);
    }
    // The merge to one partition DataFusion put under the sink is what
    // made the write one task.
    let input = match sink_exec.input().downcast_ref::<CoalescePartitionsExec>() {
        Some(c) if c.fetch().is_none() => Arc::clone(c.input()),
        _ => Arc::clone(sink_exec.input()),
    };
    Ok(Arc::new(
        FileWriteExec::new(input, config, format, new_write_id()).with_commit_target(target),
    ))
}

/// Fails a Delta write on a null partition value: DataFusion's
/// partitioned writer would name its folder after the type's default value
/// (`''`, `0`), and the log would record that value instead of a null.
fn refuse_null_partition_values(
    input: SendableRecordBatchStream,
    write: &minispark_delta::DeltaWrite,
) -> SendableRecordBatchStream {
    let schema = input.schema();
    let columns = write.partition_columns.clone();
    let location = write.location.clone();
    let checked = input.and_then(move |batch| {
        let null = columns.iter().find(|c| {
            batch
                .column_by_name(c)
                .is_some_and(|array| array.null_count() > 0)
        });
        let result = match null {
            Some(column) => Err(DataFusionError::Execution(format!(
                "Delta table '{location}': partition column {column} has a null value; \
                 minispark's Delta writer cannot write null partition values"
            ))),
            None => Ok(batch),
        };
        futures::future::ready(result)
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, checked))
}

/// See the module docs.
#[derive(Debug)]
pub struct FileWriteExec {
    input: Arc<dyn ExecutionPlan>,
    /// DataFusion's config for the write, naming the destination.
    config: FileSinkConfig,
    format: WriteFormat,
    /// The write job's id: its staging folder and its files' names.
    write_id: String,
    /// Who commits the files on the driver.
    commit_target: CommitTarget,
    properties: Arc<PlanProperties>,
}

impl FileWriteExec {
    pub fn new(
        input: Arc<dyn ExecutionPlan>,
        config: FileSinkConfig,
        format: WriteFormat,
        write_id: String,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(output_schema()),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Self {
            input,
            config,
            format,
            write_id,
            commit_target: CommitTarget::Files,
            properties,
        }
    }

    /// The same write, committed by `target`.
    pub fn with_commit_target(mut self, target: CommitTarget) -> Self {
        self.commit_target = target;
        self
    }

    /// Who commits the files on the driver.
    pub fn commit_target(&self) -> &CommitTarget {
        &self.commit_target
    }

    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    /// The destination folder.
    pub fn destination(&self) -> &ListingTableUrl {
        &self.config.table_paths[0]
    }

    pub fn config(&self) -> &FileSinkConfig {
        &self.config
    }

    pub fn format(&self) -> &WriteFormat {
        &self.format
    }

    pub fn write_id(&self) -> &str {
        &self.write_id
    }

    /// DataFusion's sink for this write over an empty input: how the codec
    /// carries the config and format (datafusion-proto serializes sinks).
    pub fn sink_exec(&self) -> DataSinkExec {
        DataSinkExec::new(
            Arc::new(EmptyExec::new(self.input.schema())),
            self.format.sink(self.config.clone()),
            None,
        )
    }

    /// The inverse of [`Self::sink_exec`].
    pub fn from_sink_exec(
        input: Arc<dyn ExecutionPlan>,
        sink_exec: &DataSinkExec,
        write_id: String,
    ) -> Result<Self> {
        let Some((config, format)) = WriteFormat::of(sink_exec.sink()) else {
            return internal_err!("a FileWriteExec's sink must be a Parquet, CSV or JSON sink");
        };
        if config.table_paths.len() != 1 {
            return internal_err!("a FileWriteExec writes to one folder");
        }
        Ok(Self::new(input, config, format, write_id))
    }
}

/// The rows a write task returns: [`WrittenFile::schema`] plus the task's
/// total row count on every row (`task_rows`: a CSV or JSON task writing
/// several files knows only its total).
pub fn output_schema() -> SchemaRef {
    let mut fields: Vec<Field> = WrittenFile::schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("task_rows", DataType::UInt64, false));
    Arc::new(Schema::new(fields))
}

/// The rows written by the tasks whose result rows are `batches`: each
/// task's total once.
pub fn rows_written(batches: &[RecordBatch]) -> Result<u64> {
    let mut per_task: HashMap<u64, u64> = HashMap::new();
    for batch in batches {
        let (Some(partition), Some(rows)) = (
            batch
                .column_by_name("partition")
                .and_then(|c| c.as_any().downcast_ref::<UInt64Array>()),
            batch
                .column_by_name("task_rows")
                .and_then(|c| c.as_any().downcast_ref::<UInt64Array>()),
        ) else {
            return internal_err!("a write task's result lacks partition or task_rows");
        };
        for i in 0..batch.num_rows() {
            per_task.insert(partition.value(i), rows.value(i));
        }
    }
    Ok(per_task.values().sum())
}

impl DisplayAs for FileWriteExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let cols: Vec<&str> = self
            .config
            .table_partition_cols
            .iter()
            .map(|(c, _)| c.as_str())
            .collect();
        write!(
            f,
            "FileWriteExec: {} to {}, one task per partition, committed by the driver",
            self.format.name(),
            self.destination()
        )?;
        if !cols.is_empty() {
            write!(f, ", partitioned by {}", cols.join(", "))?;
        }
        match &self.commit_target {
            CommitTarget::Delta(write) => {
                write!(f, ", {}", minispark_delta::sink::describe(write))?
            }
            CommitTarget::Iceberg(append) => {
                write!(f, ", as an Iceberg append to {}", append.location)?
            }
            CommitTarget::IcebergDecoded => write!(f, ", as an Iceberg append")?,
            CommitTarget::Files => {}
        }
        Ok(())
    }
}

impl ExecutionPlan for FileWriteExec {
    fn name(&self) -> &str {
        "FileWriteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match children.pop() {
            Some(input) if children.is_empty() => Ok(Arc::new(
                Self::new(
                    input,
                    self.config.clone(),
                    self.format.clone(),
                    self.write_id.clone(),
                )
                .with_commit_target(self.commit_target.clone()),
            )),
            _ => internal_err!("FileWriteExec has exactly one child"),
        }
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let dest = self.destination().prefix().clone();
        let staging = task_staging(&dest, &self.write_id, partition, &new_attempt_token());
        let store_url = self.config.object_store_url.clone();
        let staging_url = ListingTableUrl::parse(format!(
            "{}{}/",
            store_url.as_str().trim_end_matches('/').to_string() + "/",
            staging.as_ref()
        ))?;
        let mut config = self.config.clone();
        config.original_url = staging_url.to_string();
        config.table_paths = vec![staging_url];
        config.file_output_mode = FileOutputMode::Directory;
        // One file per task (per partition value): DataFusion would spread
        // one stream over several files.
        let mut session = context.session_config().clone();
        session
            .options_mut()
            .set("datafusion.execution.minimum_parallel_output_files", "1")?;
        let ctx = Arc::new(TaskContext::new(
            context.task_id(),
            context.session_id(),
            session,
            context.scalar_functions().clone(),
            context.higher_order_functions().clone(),
            context.aggregate_functions().clone(),
            context.window_functions().clone(),
            context.runtime_env(),
        ));
        // As DataFusion's DataSinkExec: a NULL in a column the destination
        // declares NOT NULL fails the task (a Parquet writer would write
        // it as a value).
        let sink_schema = Arc::clone(self.config.output_schema());
        let mut input = if sink_schema.fields().len() == self.input.schema().fields().len() {
            execute_input_stream(
                Arc::clone(&self.input),
                sink_schema,
                partition,
                Arc::clone(&ctx),
            )?
        } else {
            self.input.execute(partition, Arc::clone(&ctx))?
        };
        if let CommitTarget::Delta(write) = &self.commit_target
            && !write.partition_columns.is_empty()
        {
            input = refuse_null_partition_values(input, write);
        }
        let format = self.format.clone();
        let write_id = self.write_id.clone();
        let extension = self.config.file_extension.clone();
        let written = async move {
            let (task_rows, parquet_rows) = match format {
                WriteFormat::Parquet(options) => {
                    let sink = ParquetSink::new(config, *options);
                    let rows = DataSink::write_all(&sink, input, &ctx).await?;
                    let per_file: HashMap<String, u64> = sink
                        .written()
                        .into_iter()
                        .map(|(path, meta)| {
                            (path.to_string(), meta.file_metadata().num_rows() as u64)
                        })
                        .collect();
                    (rows, Some(per_file))
                }
                WriteFormat::Csv(options) => {
                    let sink = CsvSink::new(config, options);
                    (DataSink::write_all(&sink, input, &ctx).await?, None)
                }
                WriteFormat::Json(options) => {
                    let sink = JsonSink::new(config, options);
                    (DataSink::write_all(&sink, input, &ctx).await?, None)
                }
            };
            let store = ctx.runtime_env().object_store(&store_url)?;
            let mut listed: Vec<_> = store
                .list(Some(&staging))
                .try_collect()
                .await
                .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?;
            listed.sort_by(|a, b| a.location.cmp(&b.location));
            let only_one = listed.len() == 1;
            // Spark's `c000` counts the files of one task in one folder.
            let mut per_folder: HashMap<Vec<String>, usize> = HashMap::new();
            let files: Vec<WrittenFile> = listed
                .into_iter()
                .map(|meta| {
                    let relative: Vec<String> = meta
                        .location
                        .prefix_match(&staging)
                        .map(|parts| parts.map(|p| p.as_ref().to_string()).collect())
                        .unwrap_or_default();
                    let dirs: Vec<&String> = relative
                        .iter()
                        .take(relative.len().saturating_sub(1))
                        .collect();
                    let counter = per_folder
                        .entry(dirs.iter().map(|d| d.to_string()).collect())
                        .or_default();
                    let name = final_file_name(partition, &write_id, *counter, &extension);
                    *counter += 1;
                    let final_path = dirs
                        .iter()
                        .map(|d| d.as_str())
                        .chain(std::iter::once(name.as_str()))
                        .collect::<Vec<_>>()
                        .join("/");
                    let rows = match &parquet_rows {
                        Some(per_file) => per_file.get(meta.location.as_ref()).copied(),
                        None => only_one.then_some(task_rows),
                    };
                    WrittenFile {
                        partition,
                        staged_path: meta.location.to_string(),
                        final_path,
                        bytes: meta.size,
                        rows,
                        partition_values: dirs
                            .iter()
                            .filter_map(|d| d.split_once('='))
                            .map(|(c, v)| (c.to_string(), v.to_string()))
                            .collect(),
                    }
                })
                .collect();
            let batch = WrittenFile::to_batch(&files)?;
            let mut columns = batch.columns().to_vec();
            columns.push(Arc::new(UInt64Array::from(vec![task_rows; files.len()])));
            RecordBatch::try_new(output_schema(), columns).map_err(DataFusionError::from)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            output_schema(),
            futures::stream::once(written),
        )))
    }
}
