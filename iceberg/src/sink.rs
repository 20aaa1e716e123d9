//! The write side of an Iceberg table on the driver's planner:
//! `INSERT INTO t` (and `DataFrame::write_iceberg`) become an
//! [`IcebergSink`], which minispark's distributed write runs on the
//! executors and the driver commits once as an Iceberg append.
//!
//! ```text
//!  INSERT INTO t SELECT ...
//!    IcebergTable::insert_into ─▶ DataSinkExec(IcebergSink)
//!        input: the rows, cast to the file schema (Iceberg field ids),
//!               plus one hidden column per partition field
//!    distribute_write (planner) ─▶ FileWriteExec, one task per partition:
//!        DataFusion's Parquet writer, files split by the hidden columns into
//!        <table>/data/_minispark_staging/<write>/task-<p>-<attempt>/__iceberg_partition_0=<hex>/...
//!    job commit (driver) ─▶ crate::fast_append: files moved under data/,
//!        one snapshot appended through crate::folder_catalog
//! ```
//!
//! The executors write with DataFusion's own Parquet writer, through the
//! same staging and task-attempt protocol as plain files (one file per
//! task and partition value, retried attempts never committed): the files
//! are Iceberg data files because their Arrow fields carry the table's
//! field ids (`PARQUET:field_id`), so every Iceberg reader (pyiceberg,
//! Spark, minispark) resolves their columns by id.
//!
//! Partition values are computed on the executors as hidden columns, one
//! per partition field: the transform's value (`identity`, `day`, `month`,
//! `year`, `hour`, `void`) spelled as text (numbers in decimal, days since
//! 1970 for `day` and dates, microseconds for timestamps), hex-encoded so
//! that any value makes a safe folder name, and `null` for NULL. The
//! driver reads them back from the folder names ([`crate::fast_append`]).
//! `bucket` and `truncate` partitions are refused by name.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::config::TableParquetOptions;
use datafusion::common::{Column, DFSchema, DataFusionError, Result, exec_err, plan_err};
use datafusion::datasource::file_format::parquet::ParquetSink;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::datasource::physical_plan::{FileGroup, FileOutputMode, FileSinkConfig};
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, cast, lit, when};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use iceberg::spec::{PrimitiveType, TableMetadata, Transform, Type};
use serde::{Deserialize, Serialize};

use crate::scan::chain;

/// The prefix of the hidden partition columns (and of the staging folders
/// named after them).
pub const PARTITION_COLUMN_PREFIX: &str = "__iceberg_partition_";

/// What the driver's commit needs to know of an append: the table, and
/// the schema and partition spec the files were written with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcebergAppend {
    /// The table's location (its metadata's `location`), no trailing `/`.
    pub location: String,
    /// The schema the files hold.
    pub schema_id: i32,
    /// The partition spec they are split by.
    pub spec_id: i32,
    /// The hidden partition columns, in the spec's field order.
    pub partition_columns: Vec<String>,
}

impl IcebergAppend {
    /// The folder the data files go to.
    pub fn data_folder(&self) -> String {
        format!("{}/data", self.location)
    }
}

/// A `DataSink` marking an Iceberg append: DataFusion's Parquet sink for
/// the files, and the [`IcebergAppend`] the driver commits. It is never
/// run as it is: minispark's planner turns it into a distributed write
/// (one task per partition, committed once by the driver).
#[derive(Debug)]
pub struct IcebergSink {
    parquet: ParquetSink,
    append: Arc<IcebergAppend>,
}

impl IcebergSink {
    /// The Parquet sink each write task runs.
    pub fn parquet_sink(&self) -> &ParquetSink {
        &self.parquet
    }

    /// What the driver commits.
    pub fn append(&self) -> &Arc<IcebergAppend> {
        &self.append
    }
}

impl DisplayAs for IcebergSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "IcebergSink: append to {}", self.append.location)
    }
}

#[async_trait]
impl DataSink for IcebergSink {
    fn schema(&self) -> &SchemaRef {
        self.parquet.schema()
    }

    async fn write_all(
        &self,
        _data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        exec_err!(
            "an append to Iceberg table {} runs as a distributed write committed by the driver; \
             it cannot run as a single task",
            self.append.location
        )
    }
}

/// The plan of an append of `input`'s rows to the table whose current
/// metadata is `metadata`: see the module docs.
pub fn append_plan(
    metadata: &TableMetadata,
    state: &dyn Session,
    input: Arc<dyn ExecutionPlan>,
    insert_op: InsertOp,
) -> Result<Arc<dyn ExecutionPlan>> {
    let location = metadata.location().trim_end_matches('/').to_string();
    if insert_op != InsertOp::Append {
        return plan_err!(
            "Iceberg table {location} takes appends only (INSERT INTO): {insert_op} is not \
             supported, because the iceberg crate (0.10) commits appends only"
        );
    }
    let schema = metadata.current_schema();
    let arrow58 = iceberg::arrow::schema_to_arrow_schema(schema).map_err(|e| {
        DataFusionError::Plan(format!(
            "Iceberg table {location} has a schema minispark cannot write: {}",
            chain(&e)
        ))
    })?;
    let file_schema = crate::arrow_bridge::schema(&arrow58)?;
    let input_schema = input.schema();
    if input_schema.fields().len() != file_schema.fields().len() {
        return plan_err!(
            "inserting {} columns into Iceberg table {location} of {} columns",
            input_schema.fields().len(),
            file_schema.fields().len()
        );
    }
    // The rows in the file schema's types (plain strings, the nested
    // fields' ids), under its names.
    let input_df = DFSchema::try_from(Arc::clone(&input_schema))?;
    let mut columns: Vec<(Expr, String)> = input_schema
        .fields()
        .iter()
        .zip(file_schema.fields())
        .map(|(from, to)| {
            let column = Expr::Column(Column::new_unqualified(from.name()));
            let expr = if from.data_type() == to.data_type() {
                column
            } else {
                cast(column, to.data_type().clone())
            };
            (expr, to.name().clone())
        })
        .collect();
    // One hidden column per partition field.
    let spec = metadata.default_partition_spec();
    let mut partition_columns = vec![];
    for (i, field) in spec.fields().iter().enumerate() {
        let source = schema.field_by_id(field.source_id).ok_or_else(|| {
            DataFusionError::Plan(format!(
                "Iceberg table {location}: partition field {} has no source column {}",
                field.name, field.source_id
            ))
        })?;
        let position = schema
            .as_struct()
            .fields()
            .iter()
            .position(|f| f.id == source.id)
            .ok_or_else(|| {
                DataFusionError::Plan(format!(
                    "Iceberg table {location}: partition field {} is on nested column {}, \
                     which minispark does not write",
                    field.name, source.name
                ))
            })?;
        // The source column as it arrives, cast to the file's type.
        let value = columns[position].0.clone();
        let text =
            partition_text(value.clone(), &source.field_type, &field.transform).map_err(|why| {
                DataFusionError::Plan(format!(
                    "cannot write Iceberg table {location}: partition field '{}' ({} of {}): \
                     {why}",
                    field.name, field.transform, source.name
                ))
            })?;
        let hidden = match text {
            Some(text) => when(value.is_null(), lit("null")).otherwise(
                datafusion::functions::encoding::expr_fn::encode(text, lit("hex")),
            )?,
            None => lit("null"),
        };
        let name = format!("{PARTITION_COLUMN_PREFIX}{i}");
        partition_columns.push(name.clone());
        columns.push((hidden, name));
    }
    let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = columns
        .into_iter()
        .map(|(expr, name)| Ok((state.create_physical_expr(expr, &input_df)?, name)))
        .collect::<Result<_>>()?;
    let projected: Arc<dyn ExecutionPlan> = Arc::new(ProjectionExec::try_new(exprs, input)?);

    // The files' schema, with the hidden columns DataFusion's writer
    // turns into folders.
    let mut fields: Vec<Field> = file_schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.extend(
        partition_columns
            .iter()
            .map(|c| Field::new(c, DataType::Utf8, false)),
    );
    let output_schema = Arc::new(Schema::new_with_metadata(
        fields,
        file_schema.metadata().clone(),
    ));
    let data = ListingTableUrl::parse(format!("{location}/data/"))?;
    let config = FileSinkConfig {
        original_url: data.to_string(),
        object_store_url: data.object_store(),
        file_group: FileGroup::default(),
        table_paths: vec![data],
        output_schema,
        table_partition_cols: partition_columns
            .iter()
            .map(|c| (c.clone(), DataType::Utf8))
            .collect(),
        insert_op: InsertOp::Append,
        keep_partition_by_columns: false,
        file_extension: "parquet".into(),
        file_output_mode: FileOutputMode::Directory,
    };
    let mut options = TableParquetOptions::new();
    options.global = state.config_options().execution.parquet.clone();
    let sink = IcebergSink {
        parquet: ParquetSink::new(config, options),
        append: Arc::new(IcebergAppend {
            location,
            schema_id: metadata.current_schema_id(),
            spec_id: metadata.default_partition_spec_id(),
            partition_columns,
        }),
    };
    Ok(Arc::new(DataSinkExec::new(projected, Arc::new(sink), None)))
}

/// The expression spelling a partition field's value as text (before hex),
/// from its source column `value` (in the file's Arrow type): `None` when
/// the value is always NULL (`void`); an error naming what is not
/// supported.
fn partition_text(
    value: Expr,
    source: &Type,
    transform: &Transform,
) -> std::result::Result<Option<Expr>, String> {
    let Type::Primitive(p) = source else {
        return Err("the source column is not a primitive type".into());
    };
    let text = |e: Expr| Ok(Some(cast(e, DataType::Utf8)));
    let timestamp = matches!(p, PrimitiveType::Timestamp | PrimitiveType::Timestamptz);
    let temporal = timestamp || matches!(p, PrimitiveType::Date);
    // Whole units since 1970, rounded down (timestamps are microseconds).
    let floor_div = |e: Expr, unit: i64| {
        let unit = lit(unit);
        // (x - ((x % u) + u) % u) / u: exact for negative x too.
        (e.clone() - (((e % unit.clone()) + unit.clone()) % unit.clone())) / unit
    };
    let micros = |e: Expr| cast(e, DataType::Int64);
    let year_of = |e: Expr| {
        cast(
            datafusion::functions::expr_fn::date_part(lit("year"), e),
            DataType::Int64,
        )
    };
    let month_of = |e: Expr| {
        cast(
            datafusion::functions::expr_fn::date_part(lit("month"), e),
            DataType::Int64,
        )
    };
    match transform {
        Transform::Void => Ok(None),
        Transform::Identity => match p {
            PrimitiveType::Int | PrimitiveType::Long | PrimitiveType::Boolean => text(value),
            PrimitiveType::String => Ok(Some(value)),
            PrimitiveType::Date => text(cast(value, DataType::Int32)),
            PrimitiveType::Timestamp | PrimitiveType::Timestamptz => text(micros(value)),
            other => Err(format!(
                "identity partitions on {other} columns are not supported for writes"
            )),
        },
        Transform::Day if temporal => text(cast(cast(value, DataType::Date32), DataType::Int32)),
        Transform::Hour if timestamp => text(floor_div(micros(value), 3_600_000_000)),
        Transform::Month if temporal => {
            text((year_of(value.clone()) - lit(1970i64)) * lit(12i64) + month_of(value) - lit(1i64))
        }
        Transform::Year if temporal => text(year_of(value) - lit(1970i64)),
        other => Err(format!(
            "the {other} transform is not supported for writes (minispark writes identity, \
             year, month, day, hour and void partitions)"
        )),
    }
}
