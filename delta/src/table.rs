//! A Delta table as a DataFusion table: planned from its log on the driver,
//! scanned as a plain Parquet file scan the executors run.
//!
//! [`DeltaTable::scan`] replays the log at the table's version, keeps the
//! files a query's filters cannot rule out (partition values, and the
//! min/max/null counts of the log's statistics), splits them into one file
//! group per task, and returns DataFusion's Parquet `DataSourceExec` over
//! them with each file's partition values: that node serializes through
//! datafusion-proto like any Parquet scan, so executors rebuild it with
//! nothing Delta-specific.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, UInt64Array};
use arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::SchemaExt;
use datafusion::common::stats::Precision;
use datafusion::common::{
    Column, DFSchema, DataFusionError, Result, ScalarValue, Statistics, plan_datafusion_err,
    plan_err,
};
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::parquet::ParquetSink;
use datafusion::datasource::listing::{ListingTableUrl, PartitionedFile};
use datafusion::datasource::physical_plan::{
    FileGroup, FileOutputMode, FileScanConfigBuilder, FileSinkConfig,
};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::object_store::path::Path;
use datafusion::physical_optimizer::pruning::{PruningPredicateBuilder, PruningStatistics};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;

use crate::commit::{DeltaWrite, NewTable, WriteMode, check_writable};
use crate::log::{Add, Snapshot, TimeTravel, load_snapshot};
use crate::schema::{arrow_schema, delta_schema_string, partition_value};
use crate::sink::DeltaSink;

/// Reader features minispark reads correctly (protocol version 3). A
/// table may list `deletionVectors` or `columnMapping` as long as no file
/// has a deletion vector and the mapping mode is `none`: checked per
/// snapshot.
const READER_FEATURES: &[&str] = &[
    "timestampNtz",
    "vacuumProtocolCheck",
    "deletionVectors",
    "columnMapping",
];

/// A Delta table at a location, read at a version or the latest.
#[derive(Debug, Clone)]
pub struct DeltaTable {
    location: String,
    url: ListingTableUrl,
    travel: TimeTravel,
    /// The version the table was opened at (for a [`TimeTravel::Latest`]
    /// table, the newest when it was created).
    version: u64,
    /// Columns in the table's order (partition columns where the schema
    /// declares them).
    schema: SchemaRef,
    partition_columns: Vec<String>,
    /// Strings and binaries as view types (see [`arrow_schema`]).
    view_types: bool,
    /// Set for a table that does not exist yet: a write creates it (its
    /// version 0) with this metadata; it cannot be scanned.
    create: Option<NewTable>,
}

/// Whether `state` reads Parquet strings as `Utf8View`.
fn view_types(state: &dyn Session) -> bool {
    state
        .config_options()
        .execution
        .parquet
        .schema_force_view_types
}

impl DeltaTable {
    /// Opens the table at `location` (a path or an object store URL whose
    /// store the session's runtime has or builds) at `travel`.
    pub async fn open(state: &dyn Session, location: &str, travel: TimeTravel) -> Result<Self> {
        let url = ListingTableUrl::parse(location)?;
        if url.get_url().scheme() == "file"
            && let Ok(path) = url.get_url().to_file_path()
            && !path.exists()
        {
            return plan_err!("'{location}' does not exist");
        }
        let snapshot = load(state, &url, location, travel).await?;
        let view_types = view_types(state);
        let schema = Arc::new(arrow_schema(&snapshot.metadata.schema_string, view_types)?);
        Ok(Self {
            view_types,
            location: location.to_string(),
            url,
            travel,
            version: snapshot.version,
            partition_columns: snapshot.metadata.partition_columns.clone(),
            schema,
            create: None,
        })
    }

    /// A table that does not exist yet at `location`, with the columns of
    /// `schema` (mapped to Delta types: the returned table's schema is what
    /// the written rows must be cast to) and `partition_columns`: writing
    /// to it creates it.
    pub fn to_create(
        state: &dyn Session,
        location: &str,
        schema: &Schema,
        partition_columns: Vec<String>,
    ) -> Result<Self> {
        for column in &partition_columns {
            if schema.field_with_name(column).is_err() {
                return plan_err!(
                    "partition column {column} is not a column of the written rows (they have {})",
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        if !partition_columns.is_empty() && partition_columns.len() == schema.fields().len() {
            return plan_err!("a Delta table needs a column that is not a partition column");
        }
        let schema_string = delta_schema_string(schema)?;
        let view_types = view_types(state);
        let table_schema = Arc::new(arrow_schema(&schema_string, view_types)?);
        Ok(Self {
            location: location.to_string(),
            url: ListingTableUrl::parse(location)?,
            travel: TimeTravel::Latest,
            version: 0,
            schema: table_schema,
            partition_columns,
            view_types,
            create: Some(NewTable { schema_string }),
        })
    }

    /// Whether this table does not exist yet (see [`Self::to_create`]).
    pub fn is_new(&self) -> bool {
        self.create.is_some()
    }

    /// The table as it was opened elsewhere (a client's plan decoded on
    /// the driver): nothing is read until a scan.
    pub fn from_parts(
        location: &str,
        travel: TimeTravel,
        version: u64,
        schema: SchemaRef,
        partition_columns: Vec<String>,
    ) -> Result<Self> {
        Ok(Self {
            location: location.to_string(),
            url: ListingTableUrl::parse(location)?,
            travel,
            version,
            view_types: schema
                .fields()
                .iter()
                .any(|f| matches!(f.data_type(), DataType::Utf8View | DataType::BinaryView)),
            schema,
            partition_columns,
            create: None,
        })
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    pub fn travel(&self) -> TimeTravel {
        self.travel
    }

    /// The version the table was opened at.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn partition_columns(&self) -> &[String] {
        &self.partition_columns
    }

    /// The snapshot a scan reads: the opened version, or for a table read at
    /// its latest version the newest one, if its columns did not change.
    async fn snapshot(&self, state: &dyn Session) -> Result<Snapshot> {
        if self.create.is_some() {
            return plan_err!(
                "Delta table '{}' does not exist yet: it cannot be read before a write creates it",
                self.location
            );
        }
        let travel = match self.travel {
            TimeTravel::Latest => TimeTravel::Latest,
            _ => TimeTravel::Version(self.version),
        };
        let snapshot = load(state, &self.url, &self.location, travel).await?;
        let schema = arrow_schema(&snapshot.metadata.schema_string, self.view_types)?;
        if schema.fields() != self.schema.fields()
            || snapshot.metadata.partition_columns != self.partition_columns
        {
            return plan_err!(
                "Delta table '{}': its columns changed at version {} (it was opened at \
                 version {}); create the table again to read them",
                self.location,
                snapshot.version,
                self.version
            );
        }
        Ok(snapshot)
    }
}

async fn load(
    state: &dyn Session,
    url: &ListingTableUrl,
    location: &str,
    travel: TimeTravel,
) -> Result<Snapshot> {
    let store = state.runtime_env().object_store(url.object_store())?;
    let snapshot = load_snapshot(store, url.prefix(), location, travel).await?;
    check_protocol(&snapshot, location)?;
    Ok(snapshot)
}

/// Refuses a table whose files would be read wrong without a feature
/// minispark lacks.
fn check_protocol(snapshot: &Snapshot, location: &str) -> Result<()> {
    let protocol = &snapshot.protocol;
    let version = protocol.min_reader_version;
    if !(1..=3).contains(&version) {
        return plan_err!(
            "Delta table '{location}' needs reader protocol version {version}; minispark \
             reads versions 1 to 3"
        );
    }
    if version == 3 {
        for feature in protocol.reader_features.iter().flatten() {
            if !READER_FEATURES.contains(&feature.as_str()) {
                return plan_err!(
                    "Delta table '{location}' uses the reader feature '{feature}', which \
                     minispark does not support (it reads {})",
                    READER_FEATURES.join(", ")
                );
            }
        }
    }
    let mapping = snapshot
        .metadata
        .configuration
        .get("delta.columnMapping.mode")
        .cloned()
        .flatten();
    if let Some(mode) = mapping.filter(|m| m != "none") {
        return plan_err!(
            "Delta table '{location}' uses column mapping (mode '{mode}'), which minispark \
             does not support"
        );
    }
    if let Some(file) = snapshot.files.iter().find(|f| f.deletion_vector.is_some()) {
        return plan_err!(
            "Delta table '{location}' has deletion vectors (file {}), which minispark does \
             not support: rewrite the files (OPTIMIZE / REORG ... APPLY (PURGE)) first",
            file.path
        );
    }
    Ok(())
}

#[async_trait::async_trait]
impl TableProvider for DeltaTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Used to skip files; every row is still filtered after the scan.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let snapshot = self.snapshot(state).await?;
        let is_partition = |name: &str| self.partition_columns.iter().any(|p| p == name);
        // The Parquet scan's columns: the files' columns in table order,
        // then the partition columns in the log's order.
        let file_fields: Vec<FieldRef> = self
            .schema
            .fields()
            .iter()
            .filter(|f| !is_partition(f.name()))
            .cloned()
            .collect();
        let partition_fields: Vec<FieldRef> = self
            .partition_columns
            .iter()
            .map(|p| {
                self.schema
                    .field_with_name(p)
                    .map(|f| Arc::new(f.clone()))
                    .map_err(|_| {
                        plan_datafusion_err!(
                            "Delta table '{}': partition column {p} is not in its schema",
                            self.location
                        )
                    })
            })
            .collect::<Result<_>>()?;
        let scan_order: Vec<String> = file_fields
            .iter()
            .chain(&partition_fields)
            .map(|f| f.name().clone())
            .collect();
        let to_scan_index = |i: usize| {
            let name = self.schema.field(i).name();
            scan_order.iter().position(|n| n == name).unwrap_or(i)
        };
        let projection: Vec<usize> = match projection {
            Some(p) => p.iter().map(|i| to_scan_index(*i)).collect(),
            None => (0..self.schema.fields().len()).map(to_scan_index).collect(),
        };

        let files = self.prune(state, &snapshot, filters)?;
        if files.is_empty() {
            let projected = self.schema.project(
                &projection
                    .iter()
                    .map(|i| {
                        self.schema
                            .index_of(&scan_order[*i])
                            .expect("scan columns are table columns")
                    })
                    .collect::<Vec<_>>(),
            )?;
            return Ok(Arc::new(EmptyExec::new(Arc::new(projected))));
        }
        let rows: Option<u64> = files
            .iter()
            .map(|f| file_stats(f).map(|s| s.num_records))
            .sum::<Option<u64>>();
        let bytes: u64 = files.iter().map(|f| f.size.max(0) as u64).sum();
        let partitioned = files
            .iter()
            .map(|f| self.partitioned_file(f, &partition_fields))
            .collect::<Result<Vec<_>>>()?;
        let groups = split_into_groups(partitioned, state.config().target_partitions().max(1));

        let table_schema = TableSchema::builder(Arc::new(Schema::new(file_fields)))
            .with_table_partition_cols(partition_fields.clone())
            .build();
        let mut statistics =
            Statistics::new_unknown(&Schema::new(scan_order_fields(&self.schema, &scan_order)));
        statistics.num_rows = rows.map_or(Precision::Absent, |r| Precision::Exact(r as usize));
        statistics.total_byte_size = Precision::Inexact(bytes as usize);
        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        let source = format.file_source(table_schema);
        let config = FileScanConfigBuilder::new(self.url.object_store(), source)
            .with_file_groups(groups)
            .with_statistics(statistics)
            .with_projection_indices(Some(projection))?
            .with_limit(limit)
            .build();
        format.create_physical_plan(state, config).await
    }

    /// `INSERT INTO` / `INSERT OVERWRITE`: a Parquet write into the table
    /// folder, committed as the next version of the log by minispark's
    /// driver (see [`crate::sink`] and [`crate::commit`]).
    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mode = match insert_op {
            InsertOp::Append => WriteMode::Append,
            InsertOp::Overwrite => WriteMode::Overwrite,
            InsertOp::Replace => {
                return plan_err!(
                    "Delta table '{}': REPLACE INTO (replacing rows by key) is not supported; \
                     INSERT INTO appends and INSERT OVERWRITE replaces the whole table \
                     (minispark has no dynamic partition overwrite)",
                    self.location
                );
            }
        };
        let write = self.plan_write(state, mode).await?;
        self.schema
            .logically_equivalent_names_and_types(&input.schema())
            .map_err(|e| {
                e.context(format!(
                    "the rows written to Delta table '{}' do not have its columns",
                    self.location
                ))
            })?;
        let table_partition_cols = self
            .partition_columns
            .iter()
            .map(|c| {
                Ok((
                    c.clone(),
                    self.schema.field_with_name(c)?.data_type().clone(),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let config = FileSinkConfig {
            original_url: self.location.clone(),
            object_store_url: self.url.object_store(),
            file_group: FileGroup::default(),
            table_paths: vec![self.url.clone()],
            output_schema: Arc::clone(&self.schema),
            table_partition_cols,
            insert_op: InsertOp::Append,
            keep_partition_by_columns: false,
            file_extension: "parquet".to_string(),
            file_output_mode: FileOutputMode::Directory,
        };
        let parquet = ParquetSink::new(config, state.table_options().parquet.clone());
        Ok(Arc::new(DataSinkExec::new(
            input,
            Arc::new(DeltaSink::new(parquet, write)),
            None,
        )))
    }
}

impl DeltaTable {
    /// What a write to this table commits: the next version of its newest
    /// snapshot (a write to a table read at a past version is refused), or
    /// version 0 of a new table.
    pub async fn plan_write(&self, state: &dyn Session, mode: WriteMode) -> Result<DeltaWrite> {
        if let Some(new) = &self.create {
            return Ok(DeltaWrite {
                location: self.location.clone(),
                mode,
                read_version: None,
                new_table: Some(new.clone()),
                partition_columns: self.partition_columns.clone(),
            });
        }
        if self.travel != TimeTravel::Latest {
            return plan_err!(
                "Delta table '{}' was opened at version {} (time travel) and cannot be written: \
                 create it without the 'version' or 'timestamp' option to write to it",
                self.location,
                self.version
            );
        }
        let snapshot = self.snapshot(state).await?;
        check_writable(&snapshot, mode, &self.location)?;
        Ok(DeltaWrite {
            location: self.location.clone(),
            mode,
            read_version: Some(snapshot.version),
            new_table: None,
            partition_columns: self.partition_columns.clone(),
        })
    }
}

fn scan_order_fields(schema: &Schema, order: &[String]) -> Vec<FieldRef> {
    order
        .iter()
        .filter_map(|n| schema.field_with_name(n).ok().map(|f| Arc::new(f.clone())))
        .collect()
}

impl DeltaTable {
    /// The live files that `filters` cannot rule out.
    fn prune<'a>(
        &self,
        state: &dyn Session,
        snapshot: &'a Snapshot,
        filters: &[Expr],
    ) -> Result<Vec<&'a Add>> {
        let all: Vec<&Add> = snapshot.files.iter().collect();
        let Some(predicate) = conjunction(filters.iter().cloned()) else {
            return Ok(all);
        };
        let df_schema = DFSchema::try_from(Arc::clone(&self.schema))?;
        let pruning = state
            .create_physical_expr(predicate, &df_schema)
            .ok()
            .and_then(|expr| {
                PruningPredicateBuilder::new()
                    .with_file_schema(Arc::clone(&self.schema))
                    .build(expr)
            });
        // A filter pruning cannot use still filters every row.
        let Some(pruning) = pruning else {
            return Ok(all);
        };
        let stats = FileStatistics::new(&all, &self.schema, &self.partition_columns)?;
        let keep = pruning.prune(&stats)?;
        Ok(all
            .into_iter()
            .zip(keep)
            .filter_map(|(f, keep)| keep.then_some(f))
            .collect())
    }

    fn partitioned_file(
        &self,
        add: &Add,
        partition_fields: &[FieldRef],
    ) -> Result<PartitionedFile> {
        let path = file_path(self.url.prefix(), &add.path)?;
        let mut file = PartitionedFile::new(path.to_string(), add.size.max(0) as u64);
        file.partition_values = partition_fields
            .iter()
            .map(|f| {
                let value = add.partition_values.get(f.name()).cloned().flatten();
                partition_value(value.as_deref(), f.data_type())
            })
            .collect::<Result<_>>()?;
        Ok(file)
    }
}

/// A data file's object store path: its URI-encoded `path` under the
/// table's root, or the path of an absolute URI.
fn file_path(root: &Path, path: &str) -> Result<Path> {
    let bad = |e: &dyn std::fmt::Display| {
        DataFusionError::Plan(format!("Delta log names a bad file path '{path}': {e}"))
    };
    if let Ok(url) = url::Url::parse(path) {
        return Path::from_url_path(url.path()).map_err(|e| bad(&e));
    }
    let relative = Path::from_url_path(path).map_err(|e| bad(&e))?;
    Ok(relative
        .parts()
        .fold(root.clone(), |acc, part| acc.join(part)))
}

/// Files into `n` groups (one per task) of about equal bytes, each group's
/// files in path order.
fn split_into_groups(mut files: Vec<PartitionedFile>, n: usize) -> Vec<FileGroup> {
    files.sort_by(|a, b| {
        b.object_meta
            .size
            .cmp(&a.object_meta.size)
            .then_with(|| a.object_meta.location.cmp(&b.object_meta.location))
    });
    let n = n.min(files.len()).max(1);
    let mut groups: Vec<(u64, Vec<PartitionedFile>)> = (0..n).map(|_| (0, vec![])).collect();
    for file in files {
        let smallest = groups
            .iter_mut()
            .min_by_key(|(bytes, _)| *bytes)
            .expect("at least one group");
        smallest.0 += file.object_meta.size;
        smallest.1.push(file);
    }
    groups
        .into_iter()
        .map(|(_, mut files)| {
            files.sort_by(|a, b| a.object_meta.location.cmp(&b.object_meta.location));
            FileGroup::new(files)
        })
        .collect()
}

/// The parts of a file's `stats` JSON pruning uses.
struct FileStats {
    num_records: u64,
    min: serde_json::Map<String, serde_json::Value>,
    max: serde_json::Map<String, serde_json::Value>,
    null_count: serde_json::Map<String, serde_json::Value>,
}

fn file_stats(add: &Add) -> Option<FileStats> {
    let value: serde_json::Value = serde_json::from_str(add.stats.as_deref()?).ok()?;
    let object = |key: &str| {
        value
            .get(key)
            .and_then(|v| v.as_object())
            .cloned()
            .unwrap_or_default()
    };
    Some(FileStats {
        num_records: value.get("numRecords")?.as_u64()?,
        min: object("minValues"),
        max: object("maxValues"),
        null_count: object("nullCount"),
    })
}

/// Per-file statistics for DataFusion's pruning predicate: partition columns hold one
/// value per file (min = max); other columns use the log's min/max for
/// integers and dates (exact there: strings may be truncated prefixes and
/// timestamps are cut to milliseconds in the log, so they are not used),
/// and null counts for every column.
struct FileStatistics {
    columns: HashMap<String, ColumnStatistics>,
    rows: ArrayRef,
    files: usize,
}

struct ColumnStatistics {
    min: Option<ArrayRef>,
    max: Option<ArrayRef>,
    nulls: Option<ArrayRef>,
}

impl FileStatistics {
    fn new(files: &[&Add], schema: &Schema, partition_columns: &[String]) -> Result<Self> {
        let stats: Vec<Option<FileStats>> = files.iter().map(|f| file_stats(f)).collect();
        let rows: ArrayRef = Arc::new(
            stats
                .iter()
                .map(|s| s.as_ref().map(|s| s.num_records))
                .collect::<UInt64Array>(),
        );
        let mut columns = HashMap::new();
        for field in schema.fields() {
            let name = field.name();
            let data_type = field.data_type();
            let column = if partition_columns.contains(name) {
                let values = files
                    .iter()
                    .map(|f| {
                        let value = f.partition_values.get(name).cloned().flatten();
                        partition_value(value.as_deref(), data_type)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let nulls: ArrayRef = Arc::new(
                    values
                        .iter()
                        .zip(&stats)
                        .map(|(v, s)| {
                            let rows = s.as_ref().map(|s| s.num_records)?;
                            Some(if v.is_null() { rows } else { 0 })
                        })
                        .collect::<UInt64Array>(),
                );
                let array = ScalarValue::iter_to_array(values)?;
                ColumnStatistics {
                    min: Some(Arc::clone(&array)),
                    max: Some(array),
                    nulls: Some(nulls),
                }
            } else {
                let bound =
                    |pick: fn(&FileStats) -> &serde_json::Map<String, serde_json::Value>| {
                        if !exact_bounds(data_type) {
                            return Ok(None);
                        }
                        let values = stats
                            .iter()
                            .map(|s| {
                                let json = s.as_ref().and_then(|s| pick(s).get(name));
                                json_value(json, data_type)
                            })
                            .collect::<Vec<_>>();
                        ScalarValue::iter_to_array(values).map(Some)
                    };
                let nulls: ArrayRef = Arc::new(
                    stats
                        .iter()
                        .map(|s| s.as_ref()?.null_count.get(name)?.as_u64())
                        .collect::<UInt64Array>(),
                );
                ColumnStatistics {
                    min: bound(|s| &s.min)?,
                    max: bound(|s| &s.max)?,
                    nulls: Some(nulls),
                }
            };
            columns.insert(name.clone(), column);
        }
        Ok(Self {
            columns,
            rows,
            files: files.len(),
        })
    }
}

/// Types whose log min/max are exact.
fn exact_bounds(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::Date32
    )
}

/// A min/max of the log as a value of `data_type`; unknown as null.
fn json_value(json: Option<&serde_json::Value>, data_type: &DataType) -> ScalarValue {
    let null = || ScalarValue::try_from(data_type).unwrap_or(ScalarValue::Null);
    let text = match json {
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        _ => return null(),
    };
    ScalarValue::try_from_string(text, data_type).unwrap_or_else(|_| null())
}

impl PruningStatistics for FileStatistics {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.columns.get(column.name())?.min.clone()
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.columns.get(column.name())?.max.clone()
    }

    fn num_containers(&self) -> usize {
        self.files
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        self.columns.get(column.name())?.nulls.clone()
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::clone(&self.rows))
    }

    fn contained(
        &self,
        _column: &Column,
        _values: &std::collections::HashSet<ScalarValue>,
    ) -> Option<BooleanArray> {
        None
    }
}

/// A table as bytes, for a logical plan sent to a remote driver: its
/// location, whether it follows the newest version, the version it was
/// opened at and its partition columns (the plan carries the schema).
impl DeltaTable {
    pub fn encode(&self) -> Vec<u8> {
        let follows = if self.create.is_some() {
            "create"
        } else if self.travel == TimeTravel::Latest {
            "latest"
        } else {
            "pinned"
        };
        let mut text = format!("delta\n{follows}\n{}\n", self.version);
        text.push_str(&self.partition_columns.join("\u{1f}"));
        text.push('\n');
        if let Some(new) = &self.create {
            // A new table's Delta schema (one line of JSON) before the location.
            text.push_str(&new.schema_string);
            text.push('\n');
        }
        text.push_str(&self.location);
        text.into_bytes()
    }

    /// The table [`Self::encode`] wrote, or `None` for other bytes.
    pub fn decode(bytes: &[u8], schema: SchemaRef) -> Option<Result<Self>> {
        let text = std::str::from_utf8(bytes).ok()?;
        let rest = text.strip_prefix("delta\n")?;
        let mut lines = rest.splitn(4, '\n');
        let (follows, version, partitions, location) =
            (lines.next()?, lines.next()?, lines.next()?, lines.next()?);
        let Ok(version) = version.parse::<u64>() else {
            return Some(plan_err!("a Delta table with a bad version '{version}'"));
        };
        let travel = match follows {
            "latest" => TimeTravel::Latest,
            _ => TimeTravel::Version(version),
        };
        let partitions = partitions
            .split('\u{1f}')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        if follows == "create" {
            let (schema_string, location) = location.split_once('\n')?;
            return Some(
                Self::from_parts(location, TimeTravel::Latest, 0, schema, partitions).map(
                    |mut t| {
                        t.create = Some(NewTable {
                            schema_string: schema_string.to_string(),
                        });
                        t
                    },
                ),
            );
        }
        Some(Self::from_parts(
            location, travel, version, schema, partitions,
        ))
    }
}
