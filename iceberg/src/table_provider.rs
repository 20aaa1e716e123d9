//! An Iceberg table as a DataFusion table, planned on the driver from the
//! table's metadata: `CREATE EXTERNAL TABLE t STORED AS ICEBERG LOCATION
//! '...'` (see [`IcebergTableFactory`]) and `Session::read_iceberg`.
//!
//! The table is opened from its folder or one of its metadata files (see
//! [`crate::table_location`]); no catalog service is needed. Reading an
//! older snapshot (time travel) is a table option, with the names Spark's
//! Iceberg reader gives them:
//!
//! | option | reads |
//! |---|---|
//! | `'snapshot-id' '<id>'` | that snapshot |
//! | `'as-of-timestamp' '<ms since 1970>'` or `'<timestamp>'` | the snapshot that was current then |
//!
//! A scan ([`TableProvider::scan`]) asks `iceberg` to plan the snapshot's
//! files with the query's filters (see [`crate::predicate`]): manifests
//! whose partitions cannot match are not read, files whose column bounds
//! cannot match are skipped. The files left are dealt into the session's
//! `target_partitions` partitions of about equal bytes, one task each.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::common::{DataFusionError, Result, plan_err};
use datafusion::datasource::TableType;
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{CreateExternalTable, Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use futures::TryStreamExt;
use iceberg::TableIdent;
use iceberg::expr::Predicate;
use iceberg::scan::FileScanTask;
use iceberg::spec::SchemaRef as IcebergSchemaRef;
use iceberg::table::{StaticTable, Table};

use crate::object_store_io::file_io;
use crate::predicate::to_predicate;
use crate::scan::{IcebergScanExec, PlannedScan, chain};
use crate::table_location::current_metadata_file;

/// Which snapshot of a table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotChoice {
    /// The table's current snapshot.
    #[default]
    Current,
    /// A snapshot by id.
    Id(i64),
    /// The snapshot that was current at this time (ms since 1970, UTC).
    AsOf(i64),
}

impl SnapshotChoice {
    /// The choice a table's options make (`snapshot-id`, `as-of-timestamp`);
    /// other options are refused by name.
    pub fn from_options(options: &HashMap<String, String>) -> Result<Self> {
        let mut choice = SnapshotChoice::Current;
        for (key, value) in options {
            // DataFusion names a table's options `format.<name>`.
            let key = key.to_ascii_lowercase();
            let key = key.strip_prefix("format.").unwrap_or(&key).to_string();
            let next = match key.as_str() {
                "snapshot-id" | "snapshot_id" => SnapshotChoice::Id(value.trim().parse().map_err(
                    |_| {
                        DataFusionError::Plan(format!(
                            "Iceberg option 'snapshot-id' must be a snapshot id (an integer), got '{value}'"
                        ))
                    },
                )?),
                "as-of-timestamp" | "as_of_timestamp" => SnapshotChoice::AsOf(parse_time(value)?),
                _ => {
                    return plan_err!(
                        "unknown option '{key}' for an Iceberg table; known: 'snapshot-id', \
                         'as-of-timestamp'"
                    );
                }
            };
            if choice != SnapshotChoice::Current {
                return plan_err!(
                    "give an Iceberg table one of 'snapshot-id' and 'as-of-timestamp', not both"
                );
            }
            choice = next;
        }
        Ok(choice)
    }
}

/// Milliseconds since 1970 (UTC) of `text`: a number of milliseconds, or a
/// timestamp (`2026-11-30 12:00:00`, UTC unless it names an offset).
fn parse_time(text: &str) -> Result<i64> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    arrow::compute::kernels::cast_utils::string_to_timestamp_nanos(text)
        .map(|ns| ns.div_euclid(1_000_000))
        .map_err(|_| {
            DataFusionError::Plan(format!(
                "Iceberg option 'as-of-timestamp' must be milliseconds since 1970 or a \
                 timestamp such as '2026-11-30 12:00:00', got '{text}'"
            ))
        })
}

/// An Iceberg table at one snapshot.
#[derive(Debug)]
pub struct IcebergTable {
    location: String,
    table: Table,
    snapshot_id: Option<i64>,
    /// The snapshot's schema, in Iceberg's terms and DataFusion's Arrow.
    iceberg_schema: IcebergSchemaRef,
    schema: SchemaRef,
    /// Opened at a chosen snapshot (`snapshot-id`, `as-of-timestamp`):
    /// read-only.
    time_travel: bool,
}

impl IcebergTable {
    /// Opens the table at `location` (its folder or a metadata file) at the
    /// chosen snapshot, reading through `registry`'s object stores.
    pub async fn open(
        registry: Arc<dyn ObjectStoreRegistry>,
        location: &str,
        choice: SnapshotChoice,
    ) -> Result<Self> {
        let io = file_io(Arc::clone(&registry));
        let metadata_file = current_metadata_file(&io, &registry, location)
            .await
            .map_err(DataFusionError::Plan)?;
        let ident = TableIdent::from_strs(["minispark", "table"])
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let table = StaticTable::from_metadata_file(&metadata_file, ident, io)
            .await
            .map_err(|e| {
                DataFusionError::Plan(format!(
                    "cannot read Iceberg table metadata '{metadata_file}': {}",
                    chain(&e)
                ))
            })?
            .into_table();
        let metadata = table.metadata();
        let snapshot = match choice {
            SnapshotChoice::Current => metadata.current_snapshot().cloned(),
            SnapshotChoice::Id(id) => {
                Some(metadata.snapshot_by_id(id).cloned().ok_or_else(|| {
                    DataFusionError::Plan(format!(
                        "Iceberg table '{location}' has no snapshot {id}; it has {}",
                        list_snapshots(&table)
                    ))
                })?)
            }
            SnapshotChoice::AsOf(ms) => {
                // The snapshot log says which snapshot was current when.
                let id = metadata
                    .history()
                    .iter()
                    .filter(|entry| entry.timestamp_ms() <= ms)
                    .max_by_key(|entry| entry.timestamp_ms())
                    .map(|entry| entry.snapshot_id)
                    .ok_or_else(|| {
                        DataFusionError::Plan(format!(
                            "Iceberg table '{location}' had no snapshot at {ms} ms since 1970; \
                             it has {}",
                            list_snapshots(&table)
                        ))
                    })?;
                Some(metadata.snapshot_by_id(id).cloned().ok_or_else(|| {
                    DataFusionError::Plan(format!(
                        "Iceberg table '{location}': the snapshot log names snapshot {id}, \
                         which has expired"
                    ))
                })?)
            }
        };
        let snapshot_id = snapshot.map(|s| s.snapshot_id());
        let mut opened = Self::at(location, table, snapshot_id)?;
        opened.time_travel = choice != SnapshotChoice::Current;
        Ok(opened)
    }

    /// `table` at snapshot `snapshot_id` (one of its snapshots).
    fn at(location: &str, table: Table, snapshot_id: Option<i64>) -> Result<Self> {
        let metadata = table.metadata();
        let snapshot = snapshot_id.and_then(|id| metadata.snapshot_by_id(id));
        let iceberg_schema = match snapshot {
            Some(s) => s
                .schema(metadata)
                .map_err(|e| DataFusionError::Plan(chain(&e)))?,
            None => Arc::clone(metadata.current_schema()),
        };
        let arrow58 = iceberg::arrow::schema_to_arrow_schema(&iceberg_schema).map_err(|e| {
            DataFusionError::Plan(format!(
                "Iceberg table '{location}' has a schema minispark cannot read: {}",
                chain(&e)
            ))
        })?;
        let schema = Arc::new(crate::arrow_bridge::with_view_types(
            &crate::arrow_bridge::schema(&arrow58)?,
        ));
        Ok(Self {
            location: location.trim_end_matches('/').to_string(),
            snapshot_id,
            table,
            iceberg_schema,
            schema,
            time_travel: false,
        })
    }

    /// The table as bytes for a remote driver: its location, the snapshot
    /// read and the whole metadata it was opened with (so the driver plans
    /// the same snapshot with the same schema without reading it again).
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(&SentTable {
            location: self.location.clone(),
            metadata_location: self.table.metadata_location().map(str::to_string),
            metadata: self.table.metadata().clone(),
            snapshot_id: self.snapshot_id,
            time_travel: self.time_travel,
        })
        .map_err(|e| DataFusionError::Internal(format!("encoding an Iceberg table: {e}")))
    }

    /// A table [`encode`](Self::encode)d, reading through `registry`.
    pub fn decode(bytes: &[u8], registry: Arc<dyn ObjectStoreRegistry>) -> Result<Self> {
        let sent: SentTable = serde_json::from_slice(bytes)
            .map_err(|e| DataFusionError::Plan(format!("an Iceberg table does not decode: {e}")))?;
        let ident = TableIdent::from_strs(["minispark", "table"])
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let mut builder = Table::builder()
            .metadata(sent.metadata)
            .identifier(ident)
            .file_io(file_io(registry))
            .runtime(iceberg::Runtime::try_current().map_err(|e| DataFusionError::Plan(chain(&e)))?)
            .readonly(true);
        if let Some(m) = sent.metadata_location {
            builder = builder.metadata_location(m);
        }
        let table = builder
            .build()
            .map_err(|e| DataFusionError::Plan(chain(&e)))?;
        if let Some(id) = sent.snapshot_id
            && table.metadata().snapshot_by_id(id).is_none()
        {
            return plan_err!("an Iceberg table sent with snapshot {id}, which it does not have");
        }
        let mut table = Self::at(&sent.location, table, sent.snapshot_id)?;
        table.time_travel = sent.time_travel;
        Ok(table)
    }

    /// The snapshot read (`None`: the table has none yet).
    pub fn snapshot_id(&self) -> Option<i64> {
        self.snapshot_id
    }

    /// The table's metadata as opened: every snapshot, schema and
    /// partition spec, whichever snapshot is read.
    pub fn metadata(&self) -> &iceberg::spec::TableMetadata {
        self.table.metadata()
    }

    /// The predicate of the filters that convert, all ANDed.
    fn predicate(&self, filters: &[Expr]) -> Option<Predicate> {
        filters
            .iter()
            .filter_map(|f| to_predicate(f, &self.iceberg_schema))
            .reduce(Predicate::and)
    }

    /// The snapshot's files that may match `predicate`, as file tasks
    /// reading `columns`.
    async fn plan_files(
        &self,
        columns: &[String],
        predicate: Option<Predicate>,
    ) -> Result<Vec<FileScanTask>> {
        let Some(snapshot_id) = self.snapshot_id else {
            return Ok(vec![]);
        };
        let mut builder = self.table.scan().snapshot_id(snapshot_id);
        builder = if columns.is_empty() {
            builder.select_empty()
        } else {
            builder.select(columns.iter().cloned())
        };
        if let Some(p) = predicate {
            builder = builder.with_filter(p);
        }
        let planning = |e: iceberg::Error| {
            DataFusionError::Plan(format!(
                "planning the scan of Iceberg table '{}': {}",
                self.location,
                chain(&e)
            ))
        };
        let scan = builder.build().map_err(planning)?;
        let tasks: Vec<FileScanTask> = scan
            .plan_files()
            .await
            .map_err(planning)?
            .try_collect()
            .await
            .map_err(planning)?;
        Ok(tasks)
    }
}

/// What a remote driver is sent of a table.
#[derive(serde::Serialize, serde::Deserialize)]
struct SentTable {
    location: String,
    metadata_location: Option<String>,
    metadata: iceberg::spec::TableMetadata,
    snapshot_id: Option<i64>,
    #[serde(default)]
    time_travel: bool,
}

/// The snapshots of a table, for an error message.
fn list_snapshots(table: &Table) -> String {
    let mut snapshots: Vec<_> = table
        .metadata()
        .snapshots()
        .map(|s| (s.timestamp_ms(), s.snapshot_id()))
        .collect();
    if snapshots.is_empty() {
        return "no snapshots".into();
    }
    snapshots.sort();
    let shown: Vec<String> = snapshots
        .iter()
        .map(|(ms, id)| format!("{id} (at {ms} ms)"))
        .collect();
    format!("snapshots {}", shown.join(", "))
}

/// Smallest piece a data file is split into.
const MIN_SPLIT_BYTES: u64 = 4 << 20;

/// `tasks` with files larger than a `partitions`-th of all the bytes (and
/// than [`MIN_SPLIT_BYTES`]) split into byte ranges of about that size, so
/// that a table of few large files still reads in `partitions` tasks.
/// `iceberg`'s reader gives each row group to the one range holding its
/// midpoint, so the ranges of a file read each of its rows once.
fn split(tasks: Vec<FileScanTask>, partitions: usize) -> Vec<FileScanTask> {
    let total: u64 = tasks.iter().map(|t| t.length).sum();
    let piece = total
        .div_ceil(partitions.max(1) as u64)
        .max(MIN_SPLIT_BYTES);
    tasks
        .into_iter()
        .flat_map(|task| {
            let pieces = task.length.div_ceil(piece).max(1);
            if pieces == 1 {
                return vec![task];
            }
            let (start, length) = (task.start, task.length);
            (0..pieces)
                .map(|i| {
                    let from = start + length * i / pieces;
                    let to = start + length * (i + 1) / pieces;
                    let mut part = task.clone();
                    part.start = from;
                    part.length = to - from;
                    // An estimate: rows in proportion to bytes.
                    part.record_count = task
                        .record_count
                        .map(|r| r * (i + 1) / pieces - r * i / pieces);
                    part
                })
                .collect()
        })
        .collect()
}

/// `tasks` dealt into at most `partitions` groups of about equal bytes:
/// the largest file first, each to the lightest group.
fn deal(mut tasks: Vec<FileScanTask>, partitions: usize) -> Vec<Vec<FileScanTask>> {
    let n = partitions.max(1).min(tasks.len().max(1));
    tasks.sort_by(|a, b| {
        b.length
            .cmp(&a.length)
            .then_with(|| a.data_file_path.cmp(&b.data_file_path))
    });
    let mut groups: Vec<(u64, Vec<FileScanTask>)> = (0..n).map(|_| (0, vec![])).collect();
    for task in tasks {
        let lightest = groups
            .iter_mut()
            .min_by_key(|(bytes, _)| *bytes)
            .expect("at least one group");
        lightest.0 += task.length;
        lightest.1.push(task);
    }
    groups
        .into_iter()
        .map(|(_, g)| g)
        .filter(|g| !g.is_empty())
        .collect()
}

#[async_trait]
impl TableProvider for IcebergTable {
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
        Ok(filters
            .iter()
            .map(|f| match to_predicate(f, &self.iceberg_schema) {
                // Files are skipped; rows are still filtered by DataFusion.
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let predicate = self.predicate(filters);
        let shown = predicate.as_ref().map(|p| p.to_string());
        let mut tasks = self.plan_files(&columns, predicate).await?;
        let name_mapping = tasks
            .iter()
            .find_map(|t| t.name_mapping.as_deref().cloned());
        for task in &mut tasks {
            task.name_mapping = None;
            // What does not travel to the executors (and is not needed for
            // files that hold their partition columns, as Iceberg writers'
            // do).
            task.partition = None;
            task.partition_spec = None;
        }
        let snapshot_files = self
            .snapshot_id
            .and_then(|id| self.table.metadata().snapshot_by_id(id))
            .and_then(|s| s.summary().additional_properties.get("total-data-files"))
            .and_then(|n| n.parse().ok());
        // What the planner estimates the scan by: the manifests' metrics
        // of the files kept, for the projected columns.
        let statistics = match self.snapshot_id {
            Some(id) => {
                let paths: std::collections::HashSet<&str> =
                    tasks.iter().map(|t| t.data_file_path.as_str()).collect();
                match crate::statistics::data_files(&self.table, id, &paths).await {
                    Ok(files) => Some(crate::statistics::statistics(
                        &files,
                        &schema,
                        &self.iceberg_schema,
                    )),
                    Err(e) => {
                        tracing::warn!(
                            table = self.location,
                            error = %e,
                            "planning without the manifests' statistics"
                        );
                        None
                    }
                }
            }
            None => None,
        };
        let planned = PlannedScan {
            location: self.location.clone(),
            snapshot_id: self.snapshot_id,
            snapshot_files,
            predicate: shown,
            partitions: deal(
                split(tasks, state.config().target_partitions()),
                state.config().target_partitions(),
            ),
            name_mapping,
        };
        let mut exec = IcebergScanExec::new(planned, schema);
        if let Some(statistics) = statistics {
            exec = exec.with_statistics(statistics);
        }
        Ok(Arc::new(exec))
    }

    /// `INSERT INTO`: an append of the input's rows, written by the
    /// executors and committed once by the driver (see [`crate::sink`]).
    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let metadata = self.table.metadata();
        if self.time_travel || self.snapshot_id != metadata.current_snapshot_id() {
            return plan_err!(
                "Iceberg table '{}' was opened at snapshot {} ('snapshot-id' or \
                 'as-of-timestamp'), so it is read-only: appends go to the current snapshot, \
                 so open the table without those options to write",
                self.location,
                self.snapshot_id.map(|s| s.to_string()).unwrap_or_default()
            );
        }
        crate::sink::append_plan(metadata, state, input, insert_op)
    }
}

/// `CREATE EXTERNAL TABLE ... STORED AS ICEBERG LOCATION '...'`.
#[derive(Debug, Default)]
pub struct IcebergTableFactory;

#[async_trait]
impl TableProviderFactory for IcebergTableFactory {
    async fn create(
        &self,
        state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        if !cmd.schema.fields().is_empty() {
            return plan_err!(
                "an Iceberg table's columns come from its metadata: leave them out of \
                 CREATE EXTERNAL TABLE {}",
                cmd.name
            );
        }
        if !cmd.table_partition_cols.is_empty() {
            return plan_err!(
                "an Iceberg table's partitioning comes from its metadata: leave PARTITIONED BY \
                 out of CREATE EXTERNAL TABLE {}",
                cmd.name
            );
        }
        let [location] = cmd.locations.as_slice() else {
            return plan_err!("an Iceberg table has one LOCATION");
        };
        let choice = SnapshotChoice::from_options(&cmd.options)?;
        let registry = Arc::clone(&state.runtime_env().object_store_registry);
        Ok(Arc::new(
            IcebergTable::open(registry, location, choice).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn time_travel_options_are_read_and_checked() {
        assert_eq!(
            SnapshotChoice::from_options(&options(&[])).unwrap(),
            SnapshotChoice::Current
        );
        assert_eq!(
            SnapshotChoice::from_options(&options(&[("snapshot-id", "42")])).unwrap(),
            SnapshotChoice::Id(42)
        );
        assert_eq!(
            SnapshotChoice::from_options(&options(&[("as-of-timestamp", "1000")])).unwrap(),
            SnapshotChoice::AsOf(1000)
        );
        assert_eq!(
            SnapshotChoice::from_options(&options(&[("as-of-timestamp", "1970-01-01T00:00:01Z")]))
                .unwrap(),
            SnapshotChoice::AsOf(1000)
        );
        for (bad, says) in [
            (options(&[("snapshot-id", "x")]), "must be a snapshot id"),
            (options(&[("as-of-timestamp", "yesterday")]), "milliseconds"),
            (options(&[("version", "1")]), "unknown option 'version'"),
            (
                options(&[("snapshot-id", "1"), ("as-of-timestamp", "1")]),
                "not both",
            ),
        ] {
            let e = SnapshotChoice::from_options(&bad).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn files_are_dealt_into_groups_of_about_equal_bytes() {
        let task = |path: &str, length: u64| {
            FileScanTask::builder()
                .with_file_size_in_bytes(length)
                .with_start(0)
                .with_length(length)
                .with_data_file_path(path.to_string())
                .with_data_file_format(iceberg::spec::DataFileFormat::Parquet)
                .with_schema(Arc::new(iceberg::spec::Schema::builder().build().unwrap()))
                .with_project_field_ids(vec![])
                .with_case_sensitive(true)
                .build()
        };
        let tasks = vec![
            task("a", 10),
            task("b", 60),
            task("c", 30),
            task("d", 30),
            task("e", 10),
        ];
        let groups = deal(tasks.clone(), 2);
        let sums: Vec<u64> = groups
            .iter()
            .map(|g| g.iter().map(|t| t.length).sum())
            .collect();
        assert_eq!(sums, vec![70, 70]);
        // Never more groups than files, never an empty one.
        assert_eq!(deal(tasks.clone(), 64).len(), 5);
        assert_eq!(deal(vec![], 4).len(), 0);

        // A large file is split into contiguous byte ranges covering it.
        let big = 100 << 20;
        let pieces = split(vec![task("big", big), task("small", 1 << 20)], 4);
        let ranges: Vec<(u64, u64)> = pieces
            .iter()
            .filter(|t| t.data_file_path == "big")
            .map(|t| (t.start, t.length))
            .collect();
        assert_eq!(ranges.len(), 4, "{ranges:?}");
        assert_eq!(ranges[0].0, 0);
        for w in ranges.windows(2) {
            assert_eq!(w[0].0 + w[0].1, w[1].0, "contiguous: {ranges:?}");
        }
        assert_eq!(ranges.iter().map(|r| r.1).sum::<u64>(), big);
        assert_eq!(pieces.len(), 5, "the small file stays whole");
        // Small files are never split below the minimum piece.
        assert_eq!(split(vec![task("a", 6 << 20)], 64).len(), 2);
    }
}
